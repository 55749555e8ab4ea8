"""The Celery app. Queues: ``default`` (metrics, imports, exports) and ``gpu`` (model work)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("respect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
