"""The work queue: which game a worker annotates next, and when an idle claim lapses.

Claims are serialized per batch by a row lock on the batch; see ``claim_next``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from games.models import Worker

from .models import AnnotationBatch, Assignment, BatchItem, CrowdSession


def _cutoff(batch: AnnotationBatch):
    return timezone.now() - timedelta(minutes=batch.timeout_minutes)


def _live(cutoff) -> Q:
    """Assignments that hold a slot: submitted ones, and active ones not idle past time-out."""
    return Q(status=Assignment.Status.SUBMITTED) | Q(
        status=Assignment.Status.ACTIVE, last_activity_at__gte=cutoff
    )


def holds_slot(assignment: Assignment) -> bool:
    """Whether an active assignment may go on; an idle one whose slot was taken is released.

    Takes the batch's claim lock (see ``claim_next``) when the assignment is idle."""
    batch = assignment.batch
    if assignment.last_activity_at >= _cutoff(batch) or assignment.item.is_gold:
        return True
    AnnotationBatch.objects.select_for_update().filter(pk=batch.pk).first()
    item = assignment.item
    others = item.assignments.filter(_live(_cutoff(batch))).exclude(pk=assignment.pk).count()
    if others < item.required_annotations:
        return True
    assignment.status = Assignment.Status.RELEASED
    assignment.save(update_fields=["status"])
    return False


def claim_next(session: CrowdSession) -> Assignment | None:
    """The worker's current game in the session's batch, or a newly claimed one, or None.

    A worker never gets a game they have been assigned before (in any batch). Claims are
    serialized per batch by a row lock on the batch (``SELECT … FOR UPDATE``), taken after the
    worker's own row lock; capacity is counted under that lock, and the unique constraints on
    assignments back it up. Claims happen once per game, so one lock per batch is ample, and
    with a single lock order (worker, then batch) no two claims can deadlock.
    """
    batch = session.task.batch
    if batch is None:  # a game round's task: no games to annotate
        return None
    worker = session.worker
    now = timezone.now()
    with transaction.atomic():
        Worker.objects.select_for_update().filter(pk=worker.pk).first()
        current = (
            Assignment.objects.select_related("item", "batch")
            .filter(worker=worker, batch=batch, status=Assignment.Status.ACTIVE)
            .first()
        )
        if current is not None and holds_slot(current):
            Assignment.objects.filter(pk=current.pk).update(last_activity_at=now, session=session)
            current.last_activity_at, current.session = now, session
            return current
        batch = AnnotationBatch.objects.select_for_update().get(pk=batch.pk)
        if not batch.is_open:
            return None
        seen = Assignment.objects.filter(worker=worker, batch=batch).count()
        want_gold = bool(batch.gold_interval) and (seen + 1) % batch.gold_interval == 0
        for gold in (True, False) if want_gold else (False,):
            item = _free_item(batch, worker, gold=gold)
            if item is not None:
                return Assignment.objects.create(
                    item=item,
                    batch=batch,
                    worker=worker,
                    session=session,
                    step_started_at=now,
                    last_activity_at=now,
                )
        return None


def work_left(session: CrowdSession) -> bool:
    """Whether the session's worker has a game to annotate or could claim one now (a read:
    nothing is claimed). A game round's task always has work (the lobby decides)."""
    batch = session.task.batch
    if batch is None:
        return True
    worker = session.worker
    if Assignment.objects.filter(
        worker=worker, batch=batch, status=Assignment.Status.ACTIVE
    ).exists():
        return True
    if not batch.is_open:
        return False
    seen = Assignment.objects.filter(worker=worker, batch=batch).count()
    want_gold = bool(batch.gold_interval) and (seen + 1) % batch.gold_interval == 0
    return any(
        _free_item(batch, worker, gold=gold) is not None
        for gold in ((True, False) if want_gold else (False,))
    )


def _free_item(batch: AnnotationBatch, worker: Worker, *, gold: bool) -> BatchItem | None:
    """The next item with a free slot for this worker (call under the batch's claim lock).

    Regular items partly annotated come first, so redundant games get completed."""
    seen_game = Assignment.objects.filter(worker=worker, item__game=OuterRef("game"))
    candidates = BatchItem.objects.filter(batch=batch, is_gold=gold).exclude(Exists(seen_game))
    if gold:
        return candidates.order_by("position").first()
    live = (
        Assignment.objects.filter(item=OuterRef("pk"))
        .filter(_live(_cutoff(batch)))
        .values("item")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        candidates.annotate(live=Coalesce(Subquery(live), 0))
        .filter(live__lt=F("required_annotations"))
        .order_by("-live", "position")
        .first()
    )
