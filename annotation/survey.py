"""The two-phase survey: recording a worker's answers and submitting a finished game.

Answers are checked before anything is written, in one transaction, so a refused answer
changes nothing; refusals raise ``InputError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from games.actions import ActionError, is_valid_for, parse_action, tangrams_to_letters
from games.models import Turn

from .models import Assignment, CrowdSession, Satisfaction, TurnAnnotation
from .selectors import current_step, survey_turns
from .validation import InputError, free_text
from .work_queue import holds_slot

ANSWERED_SATISFACTION = frozenset(c for c in Satisfaction.values if c)


def checked_action(field: str, value: object, turn: Turn) -> str:
    """The canonical action string of ``value``, refused unless it fits the turn's selection."""
    if not isinstance(value, str):
        raise InputError(field, "must be an action string ('' for doing nothing)")
    order = turn.game.config.listener_order
    try:
        action = parse_action(value, len(order))
    except ActionError as error:
        raise InputError(field, str(error)) from error
    selected = tangrams_to_letters(order, turn.selection_before)
    if not is_valid_for(action, selected, len(order)):
        raise InputError(
            field,
            f"action {value!r} does not fit the selection of turn {turn.index} "
            f"({' '.join(sorted(selected)) or 'nothing'} selected)",
        )
    return str(action)


def checked_satisfaction(field: str, value: object, *, last: bool) -> str:
    """One of the answered satisfaction values; the last turn of a game takes none ('')."""
    if last:
        if value not in ("", None):
            raise InputError(field, "the last turn has no follow-up and takes no satisfaction")
        return ""
    if value not in ANSWERED_SATISFACTION:
        raise InputError(field, f"must be one of {', '.join(sorted(ANSWERED_SATISFACTION))}")
    return str(value)


# What the survey needs of an assignment's related rows (a hot path: load nothing more).
ASSIGNMENT_FIELDS = (
    *(f.name for f in Assignment._meta.concrete_fields),
    "item__is_gold",
    "item__required_annotations",
    "item__game__id",
    "item__game__config__listener_order",
    "batch__timeout_minutes",
)


def _locked_assignment(session: CrowdSession, assignment_id: object) -> Assignment:
    if not isinstance(assignment_id, int) or isinstance(assignment_id, bool):
        raise InputError("assignment", "must be the id of your current game")
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("item", "batch", "item__game__config")
        .only(*ASSIGNMENT_FIELDS)
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.worker_id != session.worker_id:
        raise InputError("assignment", "is not a game assigned to you", status=403)
    if assignment.status == Assignment.Status.SUBMITTED:
        raise InputError(
            "assignment", "this game was already submitted; answers cannot be changed", status=409
        )
    if assignment.status == Assignment.Status.RELEASED or not holds_slot(assignment):
        raise InputError(
            "assignment",
            "this game was released after a long pause; reload to get your next game",
            status=409,
        )
    return assignment


@dataclass(frozen=True)
class AnswerResult:
    """The assignment answered, with its game's turns and answers as they now stand."""

    assignment: Assignment
    duplicate: bool
    turns: list[Turn] | None = None
    answers: dict[int, TurnAnnotation] | None = None


def submit_answer(session: CrowdSession, payload: Mapping[str, object]) -> AnswerResult:
    """Record one survey answer: ``{assignment, turn, phase, action | satisfaction}``.

    Answers are given in order and never changed: a repeat of the answer already recorded for
    a step is acknowledged as a duplicate (nothing written); a different answer for an answered
    step, or an answer for a step not yet reached, is refused.
    """
    unknown = set(payload) - {"assignment", "turn", "phase", "action", "satisfaction"}
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a field of an answer")
    turn_index, phase = payload.get("turn"), payload.get("phase")
    if not isinstance(turn_index, int) or isinstance(turn_index, bool):
        raise InputError("turn", "must be a turn number")
    if phase not in (1, 2) or isinstance(phase, bool):
        raise InputError("phase", "must be 1 or 2")
    with transaction.atomic():
        assignment = _locked_assignment(session, payload.get("assignment"))
        game = assignment.item.game
        turns = survey_turns(game)
        if not 0 <= turn_index < len(turns):
            raise InputError("turn", f"game has turns 0-{len(turns) - 1}, not {turn_index}")
        turn = turns[turn_index]
        turn.game = game
        last = turn_index == len(turns) - 1
        if phase == 2 and last:
            raise InputError("phase", "the last turn has no follow-up, so no phase 2")
        field = "action" if phase == 1 else "satisfaction"
        if field not in payload:
            raise InputError(field, "is missing")
        answers = {a.turn_id: a for a in TurnAnnotation.objects.filter(assignment=assignment)}
        step = current_step(turns, answers)
        if (turn_index, phase) > (step.turn, step.phase) and not step.is_review:
            raise InputError(
                "turn",
                f"turn {turn_index} phase {phase} is not reached yet "
                f"(current: turn {step.turn} phase {step.phase})",
            )
        if phase == 1:
            value = checked_action("action", payload["action"], turn)
        else:
            value = checked_satisfaction("satisfaction", payload["satisfaction"], last=False)
        recorded = answers.get(turn.pk)
        already = recorded is not None and (phase == 1 or recorded.phase2_at is not None)
        if already:
            previous = recorded.annotated_action if phase == 1 else recorded.satisfaction
            if previous != value:
                raise InputError(
                    field,
                    f"turn {turn_index} phase {phase} was already answered; answers cannot "
                    "be changed",
                    status=409,
                )
            return AnswerResult(assignment, True, turns, answers)
        now = timezone.now()
        seconds = max(0.0, (now - assignment.step_started_at).total_seconds())
        if phase == 1:
            try:  # the queue never hands a game out twice; the constraint is the backstop
                answers[turn.pk] = TurnAnnotation.objects.create(
                    turn=turn,
                    worker_id=assignment.worker_id,
                    assignment=assignment,
                    annotated_action=value,
                    phase1_seconds=seconds,
                )
            except IntegrityError as error:
                raise InputError(
                    "turn", "you already annotated this turn in another game copy", status=409
                ) from error
        else:
            recorded.satisfaction = value
            recorded.phase2_seconds = seconds
            recorded.phase2_at = now
            recorded.save(update_fields=["satisfaction", "phase2_seconds", "phase2_at"])
        assignment.step_started_at = now
        assignment.last_activity_at = now
        assignment.save(update_fields=["step_started_at", "last_activity_at"])
        return AnswerResult(assignment, False, turns, answers)


def submit_game(session: CrowdSession, payload: Mapping[str, object]) -> AnswerResult:
    """Submit a fully answered game (``{assignment, comment?}``); a repeat is a duplicate."""
    unknown = set(payload) - {"assignment", "comment"}
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a field of a submission")
    comment = free_text("comment", payload.get("comment"))
    with transaction.atomic():
        assignment_id = payload.get("assignment")
        done = Assignment.objects.filter(
            pk=assignment_id if isinstance(assignment_id, int) else None,
            worker=session.worker,
            status=Assignment.Status.SUBMITTED,
        ).first()
        if done is not None:
            return AnswerResult(done, duplicate=True)
        assignment = _locked_assignment(session, assignment_id)
        turns = survey_turns(assignment.item.game)
        answers = {a.turn_id: a for a in TurnAnnotation.objects.filter(assignment=assignment)}
        step = current_step(turns, answers)
        if not step.is_review:
            raise InputError(
                "assignment",
                f"the game is not finished (current: turn {step.turn} phase {step.phase})",
            )
        now = timezone.now()
        assignment.status = Assignment.Status.SUBMITTED
        assignment.submitted_at = now
        assignment.last_activity_at = now
        assignment.comment = comment
        assignment.save(update_fields=["status", "submitted_at", "last_activity_at", "comment"])
        return AnswerResult(assignment, duplicate=False)
