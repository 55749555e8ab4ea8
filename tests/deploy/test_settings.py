"""Production settings: no start with the demo's public keys; the documented TLS environment
passes ``check --deploy``; absolute URLs are https behind the proxy."""

from __future__ import annotations

import base64
import sys

import pytest

from .helpers import KEYS, documented_production_environment, environment, manage, run


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ((), "DJANGO_SECRET_KEY, WORKER_ID_HMAC_KEY, WORKER_ID_ENCRYPTION_KEY must be set"),
        (("DJANGO_SECRET_KEY",), "WORKER_ID_HMAC_KEY, WORKER_ID_ENCRYPTION_KEY must be set"),
        (("DJANGO_SECRET_KEY", "WORKER_ID_HMAC_KEY"), "WORKER_ID_ENCRYPTION_KEY must be set"),
        (("WORKER_ID_HMAC_KEY", "WORKER_ID_ENCRYPTION_KEY"), "DJANGO_SECRET_KEY must be set"),
    ],
)
def test_check_fails_with_debug_off_until_every_key_is_set(present, named):
    keys = {name: KEYS[name] for name in present}
    result = manage("check", env=environment(DJANGO_DEBUG="0", **keys))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"(platform.E001) {named} when DJANGO_DEBUG is off" in result.stderr


def test_check_passes_with_debug_off_and_all_keys():
    result = manage("check", env=environment(DJANGO_DEBUG="0", **KEYS))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_demo_runs_without_keys_with_debug_on():
    result = manage("check", env=environment(DJANGO_DEBUG="1"))
    assert result.returncode == 0, result.stderr


def test_a_malformed_fernet_key_is_refused():
    env = environment(DJANGO_DEBUG="0", **(KEYS | {"WORKER_ID_ENCRYPTION_KEY": "not-a-key"}))
    result = manage("check", env=env)
    assert result.returncode == 1
    assert "(platform.E002) WORKER_ID_ENCRYPTION_KEY is not a Fernet key" in result.stderr


def test_samesite_none_cookies_need_secure_cookies():
    env = environment(DJANGO_DEBUG="0", DJANGO_COOKIE_SAMESITE="None", **KEYS)
    result = manage("check", env=env)
    assert result.returncode == 1
    assert "(platform.E003) DJANGO_COOKIE_SAMESITE=None needs DJANGO_SECURE_COOKIES=1" in (
        result.stderr
    )


@pytest.mark.parametrize("entry_point", ["config.asgi", "config.wsgi"])
def test_web_servers_refuse_to_start_with_the_demo_keys(entry_point):
    result = run([sys.executable, "-c", f"import {entry_point}"], environment(DJANGO_DEBUG="0"))
    assert result.returncode == 1
    assert "ImproperlyConfigured: platform.E001: DJANGO_SECRET_KEY, WORKER_ID_HMAC_KEY" in (
        result.stderr
    )
    started = run([sys.executable, "-c", f"import {entry_point}"], environment(**KEYS))
    assert started.returncode == 0, started.stderr


def test_the_documented_production_environment_passes_the_deploy_check(tmp_path):
    script = tmp_path / "check.sh"
    script.write_text(
        "set -eu\n"
        + documented_production_environment()
        + f"exec '{sys.executable}' manage.py check --deploy --fail-level WARNING\n"
    )
    result = run(["bash", str(script)], environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


PROBE = """
import django
django.setup()
from django.test import RequestFactory
from django.urls import reverse
from django.conf import settings
request = RequestFactory().get(
    "/", HTTP_HOST="study.example.org", HTTP_X_FORWARDED_PROTO="https"
)
print(request.build_absolute_uri(reverse("annotation:mturk", args=["KEY"])))
print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SESSION_COOKIE_SAMESITE)
print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS)
"""


def test_behind_the_tls_proxy_absolute_urls_are_https(tmp_path):
    script = tmp_path / "probe.sh"
    script.write_text(
        "set -eu\n"
        + documented_production_environment()
        + f"exec '{sys.executable}' -c \"$PROBE\"\n"
    )
    env = environment(PROBE=PROBE, DJANGO_SETTINGS_MODULE="config.settings")
    result = run(["bash", str(script)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "https://study.example.org/annotation/mturk/KEY/",
        "True True None",
        "True 31536000",
    ]


ZERO_FERNET_KEY = base64.urlsafe_b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("DJANGO_SECRET_KEY", "x", "DJANGO_SECRET_KEY (1 characters, fewer than 50)"),
        (
            "DJANGO_SECRET_KEY",
            "ab" * 30,
            "DJANGO_SECRET_KEY (only 2 distinct characters, fewer than 5)",
        ),
        ("WORKER_ID_HMAC_KEY", "k", "WORKER_ID_HMAC_KEY (1 characters, fewer than 32)"),
        (
            "WORKER_ID_ENCRYPTION_KEY",
            ZERO_FERNET_KEY,
            "WORKER_ID_ENCRYPTION_KEY (its 32 bytes hold only 1 distinct values)",
        ),
        (
            "WORKER_ID_ENCRYPTION_KEY",
            base64.urlsafe_b64encode(b"\x07" * 32).decode(),
            "WORKER_ID_ENCRYPTION_KEY (its 32 bytes hold only 1 distinct values)",
        ),
    ],
)
def test_weak_keys_are_refused_like_missing_ones(name, value, why):
    from config.checks import key_weakness

    assert f"{name} ({key_weakness(name, value)})" == why
    assert key_weakness(name, KEYS[name]) == ""


def test_check_and_the_web_entry_point_refuse_a_weak_key():
    weak = KEYS | {"WORKER_ID_HMAC_KEY": "k", "WORKER_ID_ENCRYPTION_KEY": ZERO_FERNET_KEY}
    result = manage("check", env=environment(DJANGO_DEBUG="0", **weak))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "(platform.E004) weak keys: WORKER_ID_HMAC_KEY (1 characters, fewer than 32); "
        "WORKER_ID_ENCRYPTION_KEY (its 32 bytes hold only 1 distinct values)."
    ) in result.stderr
    started = run(
        [sys.executable, "-c", "import config.asgi"], environment(DJANGO_DEBUG="0", **weak)
    )
    assert started.returncode == 1
    assert "ImproperlyConfigured: platform.E004: weak keys: WORKER_ID_HMAC_KEY" in started.stderr


def test_generated_keys_are_never_weak():
    import secrets

    from cryptography.fernet import Fernet

    from config.checks import key_weakness

    for _ in range(200):
        assert key_weakness("DJANGO_SECRET_KEY", secrets.token_urlsafe(50)) == ""
        assert key_weakness("WORKER_ID_HMAC_KEY", secrets.token_urlsafe(32)) == ""
        assert key_weakness("WORKER_ID_ENCRYPTION_KEY", Fernet.generate_key().decode()) == ""
