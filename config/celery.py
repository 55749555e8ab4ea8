"""The Celery app. Queues: ``default`` (metric runs, live-play deadlines) and ``gpu`` (model
work); docs/architecture.md lists the tasks of each."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("respect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
