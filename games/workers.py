"""Crowdworker identities: keyed hashes everywhere, the raw id encrypted for payments only.

The raw platform id (Prolific PID, MTurk WorkerId) is never stored in clear and never logged.
``id_hash`` is HMAC-SHA256 with ``WORKER_ID_HMAC_KEY``; the encrypted copy uses Fernet with
``WORKER_ID_ENCRYPTION_KEY`` (both derived from the secret key when unset, as in the demo; with
DEBUG off the system checks require them, see config.checks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from django.conf import settings
from django.http import HttpRequest

from games.models import Worker

SESSION_KEY = "respect_worker_id"


def hash_worker_id(platform: str, raw_id: str) -> str:
    """The keyed hash that stands for a worker everywhere (exports included)."""
    key = (settings.WORKER_ID_HMAC_KEY or settings.SECRET_KEY).encode()
    message = f"{platform}:{raw_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _fernet() -> Fernet:
    key = settings.WORKER_ID_ENCRYPTION_KEY
    if not key:
        digest = hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt_platform_id(raw_id: str) -> bytes:
    return _fernet().encrypt(raw_id.encode())


def decrypt_platform_id(worker: Worker) -> str | None:
    """The raw platform id, for admin payment actions only."""
    if not worker.encrypted_platform_id:
        return None
    return _fernet().decrypt(bytes(worker.encrypted_platform_id)).decode()


def get_or_create_worker(platform: str, raw_id: str, *, keep_raw_id: bool = True) -> Worker:
    """The worker for a platform id, created on first arrival.

    ``keep_raw_id`` stores the encrypted raw id (needed to pay on MTurk); imports pass False.
    """
    raw_id = raw_id.strip()
    if not raw_id or len(raw_id) > 200:
        raise ValueError("worker id must be 1-200 characters")
    worker, created = Worker.objects.get_or_create(
        platform=platform, id_hash=hash_worker_id(platform, raw_id)
    )
    if keep_raw_id and not worker.encrypted_platform_id:
        worker.encrypted_platform_id = encrypt_platform_id(raw_id)
        worker.save(update_fields=["encrypted_platform_id"])
    return worker


def login_worker(request: HttpRequest, worker: Worker) -> None:
    """Bind the worker to this browser session (crowdworkers are not Django users)."""
    request.session[SESSION_KEY] = worker.pk
    request.session.cycle_key()


def current_worker(request: HttpRequest) -> Worker | None:
    worker_id = request.session.get(SESSION_KEY)
    if worker_id is None:
        return None
    return Worker.objects.filter(pk=worker_id).first()
