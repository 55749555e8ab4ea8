"""Run the project's own entry points in a subprocess with a chosen environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Settings read from the environment that the tests below set themselves.
CONTROLLED = (
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "WORKER_ID_HMAC_KEY",
    "WORKER_ID_ENCRYPTION_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DJANGO_TLS_PROXY",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_COOKIE_SAMESITE",
)
FERNET_KEY = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
KEYS = {
    "DJANGO_SECRET_KEY": "test-secret-" + "k" * 40,
    "WORKER_ID_HMAC_KEY": "test-hmac-key-made-up-for-the-deploy-tests",
    "WORKER_ID_ENCRYPTION_KEY": FERNET_KEY,
}


def environment(**values: str) -> dict[str, str]:
    """This process's environment without the controlled settings, plus ``values``."""
    env = {name: value for name, value in os.environ.items() if name not in CONTROLLED}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env | values


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], env)


def documented_production_environment() -> str:
    """The shell block under "# production environment" in README.md."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```sh\n# production environment\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no '# production environment' block"
    return match.group(1)
