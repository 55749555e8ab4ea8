"""Failed logins per username and client address are throttled on every login."""

from __future__ import annotations

import base64
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from tests.factories import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"
REFUSED = "Too many failed logins for this username from your address."


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def username() -> str:
    """A name of its own per test: the counters live in Redis, shared with later runs."""
    return f"throttled-{uuid.uuid4().hex[:10]}"


def fail(client, url: str, username: str, times: int) -> None:
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong"})
        assert response.status_code == 200
        assert REFUSED not in response.content.decode()


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_five_failures_refuse_even_the_right_password_for_that_address(client, url, username):
    make_user(username, role="admin")
    fail(client, url, username, 5)
    refused = client.post(url, {"username": username, "password": PASSWORD})
    assert refused.status_code == 200
    assert REFUSED in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # another address still logs in
    elsewhere = client.post(
        url, {"username": username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )
    assert elsewhere.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username=username).pk)


def test_a_success_before_the_limit_starts_the_count_again(client, username):
    make_user(username, role="researcher")
    fail(client, "/accounts/login/", username, 4)
    ok = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert ok.status_code == 302
    client.logout()
    fail(client, "/accounts/login/", username, 4)
    again = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert again.status_code == 302


def test_http_basic_on_the_api_is_throttled_too(client, username):
    make_user(username, role="researcher")
    fail(client, "/accounts/login/", username, 5)
    api = APIClient()
    credentials = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert api.get("/annotation/api/batches/").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}", REMOTE_ADDR="10.0.0.3")
    assert api.get("/annotation/api/batches/").status_code == 200


def test_failures_are_counted_in_redis_when_it_is_configured():
    assert isinstance(caches[django_settings.LOGIN_THROTTLE_CACHE], RedisCache) == bool(
        django_settings.REDIS_URL
    )
