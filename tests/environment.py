"""Keys for the test run, set before Django reads its settings (``-p tests.environment``).

With DEBUG off, importing ``config.asgi`` or ``config.wsgi`` refuses the demo's public keys
(``config.checks``), and the tests import the ASGI application with DEBUG off, as production
runs it. These keys are made up for the test run; a variable already set wins. The deploy tests
start their subprocesses without them on purpose (``tests/deploy/helpers.py``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-run-secret-key-not-for-production-" + "k" * 24)
os.environ.setdefault("WORKER_ID_HMAC_KEY", "test-run-hmac-key-not-for-production")
# The tests build their tiny checkpoints in pytest's temporary directories.
os.environ.setdefault(
    "RESPECT_MODEL_ROOTS",
    f"{tempfile.gettempdir()},{Path(__file__).resolve().parents[1] / 'var'}",
)
os.environ.setdefault("WORKER_ID_ENCRYPTION_KEY", "dGVzdC1ydW4tZmVybmV0LWtleS0zMi1ieXRlcyEhISE=")
