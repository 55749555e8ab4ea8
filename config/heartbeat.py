"""Heartbeats of long Celery runs (metric, decoding, scoring and training runs).

A worker that starts a run *claims* it: the run becomes ``running`` with a fresh heartbeat and
a lease naming this delivery of the task. While it works, the worker *beats* (at every batch,
checkpoint or progress report), which refreshes the heartbeat only while the lease is still its
own. A run whose heartbeat is older than its stale setting lost its worker (the process was
killed): it is *stale*.

Why a lease: with ``acks_late`` the broker hands a task out again when its worker dies, but
also when a live task outlasts ``CELERY_VISIBILITY_TIMEOUT``; and a stale run can be queued
again from the launch path while the old message still waits in the broker. Whichever delivery
claims the run first runs it; a delivery that finds the run finished, or held by a worker that
is still beating, does nothing. A worker that finds its lease taken (it was too slow and looked
dead) stops at its next beat without writing anything more.

Deliveries that may claim a run: one finding it waiting (queued, or failed where the task is
retried after a failure), one finding it stale, and a Celery retry of the delivery that holds
it (the task failed on a transient error and asked to be retried, so it no longer runs).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import ClassVar

from celery import current_app, current_task
from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

logger = logging.getLogger(__name__)

RUNNING = "running"


class LeaseLost(Exception):
    """This worker's claim on a run was taken over by another delivery: stop, write nothing."""


class HeartbeatRun(models.Model):
    """The fields a run needs to tell a live worker from a dead one (abstract).

    Concrete runs name the Celery task that executes them (``task_name``, ``task_queue``), the
    status of a run waiting for a worker (``waiting_status``) and the setting with the seconds
    of silence after which a running run counts as stale (``stale_setting``).
    """

    task_name: ClassVar[str]
    task_queue: ClassVar[str]
    waiting_status: ClassVar[str] = "queued"
    stale_setting: ClassVar[str] = "RUN_STALE_SECONDS"

    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last sign of life of the worker running it"
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="times a worker started it (more than one: restarted)"
    )
    lease = models.CharField(
        max_length=80, blank=True, editable=False, help_text="the task delivery running it"
    )

    class Meta:
        abstract = True


def stale_seconds(model: type[HeartbeatRun]) -> int:
    return int(getattr(settings, model.stale_setting))


def _stale(model: type[HeartbeatRun], now) -> Q:
    limit = now - timedelta(seconds=stale_seconds(model))
    return Q(status=RUNNING) & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=limit))


def is_stale(run: HeartbeatRun, now=None) -> bool:
    """A running run whose worker has been silent for longer than its stale setting."""
    if run.status != RUNNING:
        return False
    if run.heartbeat_at is None:
        return True
    limit = timedelta(seconds=stale_seconds(type(run)))
    return (now or timezone.now()) - run.heartbeat_at > limit


def _delivery() -> tuple[str, str]:
    """``(lease, predecessor)``: this task delivery's lease and the lease of the attempt it
    retries ("" when none). Outside a task (a management command) a lease of its own."""
    request = getattr(current_task, "request", None)
    task_id = getattr(request, "id", None)
    if not task_id:
        return f"local:{uuid.uuid4().hex}", ""
    retries = int(getattr(request, "retries", 0) or 0)
    return f"{task_id}:{retries}", f"{task_id}:{retries - 1}" if retries else ""


def claim(model: type[HeartbeatRun], pk: int, *, startable: Iterable[str]) -> str | None:
    """Take the run for this delivery (atomically): the lease to beat with, or None when the
    run is finished or held by a live worker (this delivery must then do nothing)."""
    lease, predecessor = _delivery()
    now = timezone.now()
    may_claim = Q(status__in=list(startable)) | _stale(model, now)
    if predecessor:
        may_claim |= Q(status=RUNNING, lease=predecessor)
    claimed = model.objects.filter(Q(pk=pk) & may_claim).update(
        status=RUNNING,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), Value(now, output_field=models.DateTimeField())),
        attempts=F("attempts") + 1,
        lease=lease,
    )
    if not claimed:
        logger.info("%s %s is finished or held by a live worker: nothing to do", model.__name__, pk)
        return None
    return lease


def beat(model: type[HeartbeatRun], pk: int, lease: str, **fields) -> None:
    """Refresh the heartbeat (and write ``fields``) while ``lease`` still holds the run."""
    if not model.objects.filter(pk=pk, lease=lease).update(heartbeat_at=timezone.now(), **fields):
        raise LeaseLost(f"{model.__name__} {pk} was taken over by another worker")


def finish(model: type[HeartbeatRun], pk: int, lease: str, **fields) -> bool:
    """Write a run's final fields if ``lease`` still holds it; the lease is given up."""
    return bool(model.objects.filter(pk=pk, lease=lease).update(lease="", **fields))


def requeue_if_stale(run: HeartbeatRun, enqueue: Callable[[], None] | None = None) -> bool:
    """Put a stale run back in the queue (atomically: two launches queue it once) and send its
    task when the transaction commits. False, and nothing sent, when the run is not stale."""
    model = type(run)
    requeued = model.objects.filter(_stale(model, timezone.now()), pk=run.pk).update(
        status=model.waiting_status, lease="", heartbeat_at=timezone.now()
    )
    if not requeued:
        return False
    logger.warning("%s %s was stale (its worker stopped): queued again", model.__name__, run.pk)
    transaction.on_commit(enqueue or (lambda: send(run)))
    run.refresh_from_db()
    return True


def send(run: HeartbeatRun):
    """Send the run's task to its queue."""
    return current_app.send_task(run.task_name, args=[run.pk], queue=run.task_queue)
