"""``train_policy --wait`` says when no worker consumes the gpu-batch queue: ``queue_consumers``
asks the running workers (Celery's remote control) which queues they consume."""

from __future__ import annotations

import pytest

from models_svc.management.commands.train_policy import queue_consumers


@pytest.mark.django_db
def test_no_worker_consumes_the_gpu_queue_when_none_runs():
    assert queue_consumers("gpu-batch", timeout=1.0) == []


@pytest.mark.celery
def test_a_running_worker_is_named_as_a_consumer_of_its_queues(celery_worker):
    assert queue_consumers("gpu-batch", timeout=5.0) == [celery_worker.hostname]
    assert queue_consumers("no-such-queue", timeout=1.0) == []
