"""Fixtures of the viewer tests: every test writes tangram images into its own MEDIA_ROOT."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.TANGRAM_DIR = ""
    return root


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Logins in these tests need not cost a real password hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
