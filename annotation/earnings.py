"""Reads of pay: what each crowd session and worker earned, what was paid, what is owed.

Payouts are written by ``annotation.mturk``; bonuses by ``annotation.services.grant_bonus``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from games.models import Worker

from .models import Assignment, Bonus, CrowdSession, Payout, TurnAnnotation

ERROR_SATISFACTION = frozenset({"yes_incomplete", "yes_wrong", "no"})
CENT = Decimal("0.01")


def is_error_turn(annotated_action: str, listener_action: str, satisfaction: str) -> bool:
    """A turn with an error mode: the listener's action was not the annotated one, or the
    speaker was not fully satisfied. Such turns pay the higher rate."""
    return annotated_action != listener_action or satisfaction in ERROR_SATISFACTION


@dataclass
class SessionPay:
    turns: int = 0
    error_turns: int = 0
    annotation: Decimal = Decimal("0.00")
    bonuses: Decimal = Decimal("0.00")

    @property
    def total(self) -> Decimal:
        return self.annotation + self.bonuses


def _step_minutes(seconds: float | None, timeout_minutes: int) -> Decimal:
    """Minutes a survey step counts for pay: its measured time, at most the batch time-out."""
    capped = min(max(seconds or 0.0, 0.0), timeout_minutes * 60.0)
    return Decimal(str(capped)) / Decimal(60)


def session_pay(sessions=None) -> dict[int, SessionPay]:
    """Pay earned per crowd session on submitted games: the batch's per-turn rates, its pay
    per game and per minute of survey time (rounded to cents per session), plus bonuses."""
    answers = TurnAnnotation.objects.filter(
        assignment__status=Assignment.Status.SUBMITTED, assignment__session__isnull=False
    )
    games = Assignment.objects.filter(status=Assignment.Status.SUBMITTED, session__isnull=False)
    bonuses = Bonus.objects.filter(session__isnull=False)
    if sessions is not None:
        answers = answers.filter(assignment__session__in=sessions)
        games = games.filter(session__in=sessions)
        bonuses = bonuses.filter(session__in=sessions)
    pay: dict[int, SessionPay] = defaultdict(SessionPay)
    rows = answers.values_list(
        "assignment__session_id",
        "annotated_action",
        "turn__action",
        "satisfaction",
        "assignment__batch__pay_per_turn",
        "assignment__batch__pay_per_error_turn",
        "assignment__batch__pay_per_minute",
        "assignment__batch__timeout_minutes",
        "phase1_seconds",
        "phase2_seconds",
    )
    for row in rows:
        session_id, annotated, listener, satisfaction, rate, error_rate = row[:6]
        per_minute, timeout, *seconds = row[6:]
        entry = pay[session_id]
        entry.turns += 1
        if is_error_turn(annotated, listener, satisfaction):
            entry.error_turns += 1
            entry.annotation += error_rate
        else:
            entry.annotation += rate
        if per_minute:
            entry.annotation += per_minute * sum(_step_minutes(s, timeout) for s in seconds)
    per_game = games.filter(batch__pay_per_game__gt=0).values("session_id", "batch__pay_per_game")
    for entry in per_game.annotate(n=Count("id")):
        pay[entry["session_id"]].annotation += entry["batch__pay_per_game"] * entry["n"]
    for entry in pay.values():
        entry.annotation = entry.annotation.quantize(CENT)
    for session_id, amount in (
        bonuses.values("session_id").annotate(s=Sum("amount")).values_list("session_id", "s")
    ):
        pay[session_id].bonuses += amount
    return dict(pay)


def game_earnings(worker: Worker) -> Decimal:
    """What the games app owes the worker for games played, when it says so."""
    try:
        from games import selectors as game_selectors
    except ImportError:
        return Decimal("0.00")
    earnings = getattr(game_selectors, "worker_game_earnings", None)
    return Decimal(earnings(worker)) if earnings is not None else Decimal("0.00")


@dataclass
class WorkerPay:
    worker_id: int
    worker_hash: str
    platform: str
    turns: int = 0
    error_turns: int = 0
    annotation: Decimal = Decimal("0.00")
    bonuses: Decimal = Decimal("0.00")
    games: Decimal = Decimal("0.00")
    paid: Decimal = Decimal("0.00")
    sessions: list[int] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.annotation + self.bonuses + self.games

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.paid


def payments_by_worker() -> list[WorkerPay]:
    """Per worker: annotation pay, bonuses, game earnings, what was paid and what is owed."""
    by_session = session_pay()
    workers: dict[int, WorkerPay] = {}
    objects: dict[int, Worker] = {}

    def row_for(worker: Worker) -> WorkerPay:
        objects[worker.pk] = worker
        return workers.setdefault(worker.pk, WorkerPay(worker.pk, worker.id_hash, worker.platform))

    for session in CrowdSession.objects.select_related("worker").order_by("id"):
        row = row_for(session.worker)
        row.sessions.append(session.pk)
        pay = by_session.get(session.pk)
        if pay is not None:
            row.turns += pay.turns
            row.error_turns += pay.error_turns
            row.annotation += pay.annotation
            row.bonuses += pay.bonuses
    for bonus in Bonus.objects.filter(session__isnull=True).select_related("worker"):
        row_for(bonus.worker).bonuses += bonus.amount
    paid = (
        Payout.objects.filter(status=Payout.Status.DONE)
        .values("session__worker")
        .annotate(s=Sum("amount"))
    )
    for entry in paid:
        if entry["session__worker"] in workers:
            workers[entry["session__worker"]].paid += entry["s"]
    for worker_id, row in workers.items():
        row.games = game_earnings(objects[worker_id])
    return sorted(workers.values(), key=lambda r: r.worker_hash)
