"""System checks that refuse to run production with public keys.

The demo runs on a public secret key, and derives the worker-id HMAC key and the Fernet key from
it. With DEBUG off that would let anyone forge worker tokens and link hashed worker ids, so every
command that runs the system checks (``manage.py check``, ``migrate``, ``runserver``) and the
ASGI/WSGI entry points (``refuse_public_keys``) stop until all three keys are set. A weak key
(too short, too few distinct characters, a Fernet key of one repeated byte) is refused the same
way: it is as good as a public one.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

FERNET_HINT = (
    "generate one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


def missing_key_variables() -> list[str]:
    """The environment variables of the keys that still have their demo values."""
    missing = []
    if not settings.SECRET_KEY or settings.SECRET_KEY == settings.DEMO_SECRET_KEY:
        missing.append("DJANGO_SECRET_KEY")
    if not settings.WORKER_ID_HMAC_KEY:
        missing.append("WORKER_ID_HMAC_KEY")
    if not settings.WORKER_ID_ENCRYPTION_KEY:
        missing.append("WORKER_ID_ENCRYPTION_KEY")
    return missing


# Shortest accepted key and fewest distinct characters, as Django's own deploy check asks of
# SECRET_KEY (50 and 5); the HMAC key needs 32 (``secrets.token_urlsafe(32)`` gives 43). A random
# Fernet key has about 30 distinct bytes of 32, so asking 8 never refuses a generated one.
MIN_LENGTH = {"DJANGO_SECRET_KEY": 50, "WORKER_ID_HMAC_KEY": 32}
MIN_DISTINCT = {"DJANGO_SECRET_KEY": 5, "WORKER_ID_HMAC_KEY": 5}
MIN_DISTINCT_FERNET_BYTES = 8


def key_weakness(name: str, key: str) -> str:
    """Why the key of environment variable ``name`` is too weak to use, or "" if it is not."""
    if name == "WORKER_ID_ENCRYPTION_KEY":
        if not _is_fernet_key(key):
            return ""
        raw = base64.urlsafe_b64decode(key.encode())
        if len(set(raw)) < MIN_DISTINCT_FERNET_BYTES:
            return f"its 32 bytes hold only {len(set(raw))} distinct values"
        return ""
    if len(key) < MIN_LENGTH[name]:
        return f"{len(key)} characters, fewer than {MIN_LENGTH[name]}"
    if len(set(key)) < MIN_DISTINCT[name]:
        return f"only {len(set(key))} distinct characters, fewer than {MIN_DISTINCT[name]}"
    return ""


def weak_keys() -> list[str]:
    """``NAME (why)`` for every key that is set but too weak."""
    keys = {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "WORKER_ID_HMAC_KEY": settings.WORKER_ID_HMAC_KEY,
        "WORKER_ID_ENCRYPTION_KEY": settings.WORKER_ID_ENCRYPTION_KEY,
    }
    missing = missing_key_variables()
    found = []
    for name, key in keys.items():
        why = key_weakness(name, key) if key and name not in missing else ""
        if why:
            found.append(f"{name} ({why})")
    return found


def _is_fernet_key(key: str) -> bool:
    try:
        Fernet(key)
    except ValueError:
        return False
    return True


@register(Tags.security)
def production_keys(app_configs=None, **kwargs) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    errors: list[CheckMessage] = []
    missing = missing_key_variables()
    if missing:
        errors.append(
            Error(
                f"{', '.join(missing)} must be set when DJANGO_DEBUG is off; the demo's public "
                "defaults would let anyone forge worker tokens and link hashed worker ids.",
                hint="Set DJANGO_SECRET_KEY, WORKER_ID_HMAC_KEY and WORKER_ID_ENCRYPTION_KEY "
                f"(README, 'Production'); for the Fernet key {FERNET_HINT}.",
                id="platform.E001",
            )
        )
    weak = weak_keys()
    if weak:
        errors.append(
            Error(
                f"weak keys: {'; '.join(weak)}. A short or repetitive key can be guessed, "
                "which would let anyone forge worker tokens and link hashed worker ids.",
                hint="Generate each key at random (README, 'Production'); for the Fernet key "
                f"{FERNET_HINT}.",
                id="platform.E004",
            )
        )
    key = settings.WORKER_ID_ENCRYPTION_KEY
    if key and not _is_fernet_key(key):
        errors.append(
            Error(
                "WORKER_ID_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes).",
                hint=FERNET_HINT,
                id="platform.E002",
            )
        )
    return errors


@register(Tags.security)
def samesite_none_needs_secure(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Browsers drop SameSite=None cookies that are not Secure, which would lose every session."""
    if settings.SESSION_COOKIE_SAMESITE != "None" or settings.SESSION_COOKIE_SECURE:
        return []
    return [
        Error(
            "DJANGO_COOKIE_SAMESITE=None needs DJANGO_SECURE_COOKIES=1 (browsers refuse "
            "SameSite=None cookies without Secure).",
            id="platform.E003",
        )
    ]


def refuse_public_keys() -> None:
    """Stop a web server process from starting with the demo's keys while DEBUG is off."""
    errors = production_keys() + samesite_none_needs_secure()
    if errors:
        raise ImproperlyConfigured(" ".join(f"{e.id}: {e.msg}" for e in errors))
