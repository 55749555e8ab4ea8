"""The one lifecycle of long Celery runs (metric, decoding, scoring and training runs).

Statuses (``RunStatus``): a run is created ``queued`` and its task is sent to its queue
(``enqueue``) once the creating transaction commits; a worker *claims* it (``running``); it ends
``done``, ``failed`` (with its error) or ``cancelled``. ``execute`` is the one way a worker runs
one: whatever the work raises, the run ends ``failed`` with the error's message (and the
traceback goes to the log), so no run is left ``running`` by a failure.

A worker that starts a run *claims* it: the run becomes ``running`` with a fresh heartbeat and
a lease naming this delivery of the task. While it works, the worker *beats* (at every batch,
checkpoint or progress report), which refreshes the heartbeat only while the lease is still its
own. A run whose heartbeat is older than its stale setting lost its worker (the process was
killed): it is *stale*. A run still ``queued`` longer than ``RUN_QUEUED_STALE_SECONDS`` (its
broker message was lost, e.g. a Redis restart) is stale too. Asking again for a stale run
(``requeue_if_stale``, from a launch path, Resume or the admin) queues it again and sends it.

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
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from celery import current_app, current_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

logger = logging.getLogger(__name__)

# Failures that a Celery retry of the same delivery may get past (the task retries them).
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, ConnectionError)
MAX_ERROR = 4000


class RunStatus(models.TextChoices):
    """The status names of every run kind."""

    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


QUEUED, RUNNING = RunStatus.QUEUED.value, RunStatus.RUNNING.value
DONE, FAILED, CANCELLED = RunStatus.DONE.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value
ACTIVE = (QUEUED, RUNNING)
# A delivery may start a run that waits, or one that failed (a Celery retry after a failure).
STARTABLE = (QUEUED, FAILED)


class LeaseLost(Exception):
    """This worker's claim on a run was taken over by another delivery: stop, write nothing."""


class RunCancelled(Exception):
    """The work stopped because the run was asked to stop: the run ends ``cancelled``."""


class HeartbeatRun(models.Model):
    """The fields and statuses a run needs to tell a live worker from a dead one (abstract).

    Concrete runs name the Celery task that executes them (``task_name``, ``task_queue``) and
    the setting with the seconds of silence after which a running run counts as stale
    (``stale_setting``); a queued run is stale after ``RUN_QUEUED_STALE_SECONDS``.
    """

    Status = RunStatus
    task_name: ClassVar[str]
    task_queue: ClassVar[str]
    stale_setting: ClassVar[str] = "RUN_STALE_SECONDS"

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queued_at = models.DateTimeField(
        default=timezone.now, help_text="when it was last queued (its task sent)"
    )
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

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


Run = TypeVar("Run", bound=HeartbeatRun)  # a concrete run model (the base has no rows)


def stale_seconds(model: type[HeartbeatRun]) -> int:
    return int(getattr(settings, model.stale_setting))


def queued_stale_seconds() -> int:
    return int(settings.RUN_QUEUED_STALE_SECONDS)


def _stale(model: type[HeartbeatRun], now) -> Q:
    silent = now - timedelta(seconds=stale_seconds(model))
    waited = now - timedelta(seconds=queued_stale_seconds())
    running = Q(status=RUNNING) & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=silent))
    return running | (Q(status=QUEUED) & Q(queued_at__lt=waited))


def is_stale(run: HeartbeatRun, now=None) -> bool:
    """A running run whose worker has been silent for longer than its stale setting, or a
    queued run that no worker claimed within ``RUN_QUEUED_STALE_SECONDS``."""
    now = now or timezone.now()
    if run.status == QUEUED:
        return now - run.queued_at > timedelta(seconds=queued_stale_seconds())
    if run.status != RUNNING:
        return False
    if run.heartbeat_at is None:
        return True
    return now - run.heartbeat_at > timedelta(seconds=stale_seconds(type(run)))


def _delivery() -> tuple[str, str]:
    """``(lease, predecessor)``: this task delivery's lease and the lease of the attempt it
    retries ("" when none). Outside a task (a management command) a lease of its own."""
    request = getattr(current_task, "request", None)
    task_id = getattr(request, "id", None)
    if not task_id:
        return f"local:{uuid.uuid4().hex}", ""
    retries = int(getattr(request, "retries", 0) or 0)
    return f"{task_id}:{retries}", f"{task_id}:{retries - 1}" if retries else ""


def claim(model: type[Run], pk: int, *, startable: Iterable[str] = STARTABLE) -> str | None:
    """Take the run for this delivery (atomically): the lease to beat with, or None when the
    run is finished or held by a live worker (this delivery must then do nothing)."""
    lease, predecessor = _delivery()
    now = timezone.now()
    may_claim = Q(status__in=list(startable)) | _stale(model, now)
    if predecessor:
        may_claim |= Q(status=RUNNING, lease=predecessor)
    claimed = model._default_manager.filter(Q(pk=pk) & may_claim).update(
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


def beat(model: type[Run], pk: int, lease: str, **fields) -> None:
    """Refresh the heartbeat (and write ``fields``) while ``lease`` still holds the run."""
    if not model._default_manager.filter(pk=pk, lease=lease).update(
        heartbeat_at=timezone.now(), **fields
    ):
        raise LeaseLost(f"{model.__name__} {pk} was taken over by another worker")


def finish(model: type[Run], pk: int, lease: str, **fields) -> bool:
    """Write a run's final fields if ``lease`` still holds it; the lease is given up."""
    return bool(model._default_manager.filter(pk=pk, lease=lease).update(lease="", **fields))


def error_message(error: BaseException) -> str:
    """The message a failed run shows: the error's type and text (``OSError: File name too
    long``), or the text alone for a refusal the user can act on (an ``ApplicationError``)."""
    from config.errors import ApplicationError

    text = str(error) if isinstance(error, ApplicationError) else f"{type(error).__name__}: {error}"
    return text.strip()[:MAX_ERROR]


Work = Callable[[Any, str], Mapping[str, Any] | None]


def execute(
    model: type[Run],
    pk: int,
    work: Work,
    *,
    reset: Mapping[str, Any] | None = None,
    failed: Mapping[str, Any] | None = None,
    on_done: Callable[[Any], None] | None = None,
) -> Run:
    """Claim the run, do ``work(run, lease)`` and end the run; the one way a worker runs one.

    ``work`` returns the fields to write with ``done`` (None: none) and may raise
    ``RunCancelled`` (the run ends ``cancelled``). Any other exception ends the run ``failed``
    with ``error_message`` and the traceback is logged; a transient database or broker error
    is raised again after that, so the task's Celery retry can claim the failed run.
    ``reset`` is written when the run is claimed (``error`` is cleared always), ``failed`` with
    a failure; ``on_done(run)``
    runs in the transaction that marks the run done (not at all if the lease was lost). A
    delivery that finds the run finished or held by a live worker does nothing.
    """
    lease = claim(model, pk)
    if lease is None:
        return model._default_manager.get(pk=pk)
    name = f"{model._meta.verbose_name} {pk}"
    try:
        beat(model, pk, lease, error="", **(reset or {}))
        fields = dict(work(model._default_manager.get(pk=pk), lease) or {})
    except LeaseLost:
        logger.warning("%s was taken over by another worker", name)
    except RunCancelled:
        finish(model, pk, lease, status=CANCELLED, finished_at=timezone.now())
    except Exception as error:
        logger.exception("%s failed", name)
        finish(
            model,
            pk,
            lease,
            status=FAILED,
            error=error_message(error),
            finished_at=timezone.now(),
            **(failed or {}),
        )
        if isinstance(error, TRANSIENT):
            raise
    else:
        with transaction.atomic():
            if finish(model, pk, lease, status=DONE, finished_at=timezone.now(), **fields):
                if on_done is not None:
                    on_done(model._default_manager.get(pk=pk))
            else:
                logger.warning("%s was taken over by another worker", name)
    return model._default_manager.get(pk=pk)


def send(run: HeartbeatRun):
    """Send the run's task to its queue now (``enqueue`` sends it when the save commits)."""
    result = current_app.send_task(run.task_name, args=[run.pk], queue=run.task_queue)
    if any(field.name == "task_id" for field in run._meta.fields):  # runs that show it
        type(run)._default_manager.filter(pk=run.pk).update(**{"task_id": result.id or ""})
    return result


def enqueue(run: Run) -> Run:
    """Save a new run as ``queued`` and send its task once the current transaction commits."""
    run.status = QUEUED
    run.queued_at = timezone.now()
    run.save()
    transaction.on_commit(lambda: send(run))
    return run


def requeue_if_stale(run: Run) -> bool:
    """Put a stale run (running without a heartbeat, or queued and never claimed) back in the
    queue (atomically: two requests queue it once) and send its task when the transaction
    commits. False, and nothing sent, when the run is not stale."""
    model = type(run)
    now_ = timezone.now()
    requeued = model._default_manager.filter(_stale(model, now_), pk=run.pk).update(
        status=QUEUED, lease="", queued_at=now_
    )
    if not requeued:
        return False
    logger.warning(
        "%s %s was stale (its worker stopped or its message was lost): queued again",
        model.__name__,
        run.pk,
    )
    transaction.on_commit(lambda: send(run))
    run.refresh_from_db()
    return True
