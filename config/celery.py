"""The Celery app. Queues: ``default`` (metric runs, live-play deadlines), ``gpu-live`` (live
listener turns) and ``gpu-batch`` (all other model work); docs/architecture.md lists
the tasks of each."""

import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("respect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def _announce_ready(**_kwargs) -> None:
    """Touch ``RESPECT_WORKER_READY_FILE`` (if set) once the worker consumes: ``run.py demo``
    waits for it, so its last lines (URL, logins) come after the worker's banner."""
    ready_file = os.environ.get("RESPECT_WORKER_READY_FILE")
    if ready_file:
        Path(ready_file).write_text("ready\n")
