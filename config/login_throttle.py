"""Login throttling for researcher and admin accounts.

``LOGIN_THROTTLE_FAILURES`` failed logins for one username from one client address within
``LOGIN_THROTTLE_WINDOW`` seconds refuse further logins for that pair until the window (counted
from the first failure) ends. Failures are counted in the ``LOGIN_THROTTLE_CACHE`` cache (Redis in
production, so every web process sees them). The backend enforces the limit for every way in (the
login page, the admin's, HTTP Basic on the API); the login forms say why they refuse. Behind a
proxy the client address is ``REMOTE_ADDR`` as the server sets it from the proxy's headers
(``daphne --proxy-headers``; README, "Production").
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest


def _cache():
    return caches[settings.LOGIN_THROTTLE_CACHE]


def _key(request: HttpRequest, username: str) -> str:
    address = request.META.get("REMOTE_ADDR", "")
    pair = f"{username.strip().lower()}\n{address}".encode()
    return "login-failures:" + hashlib.sha256(pair).hexdigest()


def is_locked(request: HttpRequest | None, username: str | None) -> bool:
    if request is None or not username:
        return False
    return _cache().get(_key(request, username), 0) >= settings.LOGIN_THROTTLE_FAILURES


def record_failure(request: HttpRequest, username: str) -> None:
    key = _key(request, username)
    cache = _cache()
    cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.set(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW)


def forget_failures(request: HttpRequest, username: str) -> None:
    _cache().delete(_key(request, username))


def refusal_message() -> str:
    minutes = max(1, settings.LOGIN_THROTTLE_WINDOW // 60)
    return (
        f"Too many failed logins for this username from your address. Logins are refused for "
        f"up to {minutes} minutes; try again later."
    )


@receiver(user_login_failed)
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    username = credentials.get("username")
    if request is not None and username:
        record_failure(request, username)


@receiver(user_logged_in)
def _forget_on_success(sender, request: HttpRequest | None, user, **kwargs):
    if request is not None:
        forget_failures(request, user.get_username())


class ThrottledModelBackend(ModelBackend):
    """Django's model backend that refuses a throttled username and address pair."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if is_locked(request, username):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class ThrottleMixin:
    """Refuses a throttled pair with a message before trying the password."""

    def clean(self):
        if is_locked(self.request, self.cleaned_data.get("username")):
            raise ValidationError(refusal_message(), code="throttled")
        return super().clean()


class ThrottledAuthenticationForm(ThrottleMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottleMixin, AdminAuthenticationForm):
    pass
