"""Writes of the annotation app: batches, the work queue, survey answers, crowd arrival.

Every function validates before it writes and writes inside one transaction, so refused input
changes nothing. Refusals raise ``InputError`` naming the field; views turn it into a response.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from games.actions import ActionError, is_valid_for, parse_action, tangrams_to_letters
from games.models import Game, Round, Study, System, Turn, Worker
from games.workers import get_or_create_worker

from .models import (
    AnnotationBatch,
    Assignment,
    BatchItem,
    Consent,
    CrowdSession,
    CrowdTask,
    GoldAnswer,
    Quiz,
    QuizAttempt,
    Satisfaction,
    TurnAnnotation,
)
from .validation import InputError, free_text, platform_id

ANSWERED_SATISFACTION = frozenset(c for c in Satisfaction.values if c)


# --- batches -------------------------------------------------------------------------------


def eligible_games(round_: Round, system: System):
    """Ended games of a system in a round that have at least one answered turn."""
    return (
        Game.objects.filter(round=round_, system=system, status=Game.Status.ENDED)
        .annotate(n_turns=Count("turns", filter=Q(turns__selection_after__isnull=False)))
        .filter(n_turns__gt=0)
        .order_by("id")
    )


@transaction.atomic
def create_batch(
    *,
    study: Study,
    round_index: int,
    system_name: str,
    name: str,
    games: int | None = None,
    turns: int | None = None,
    redundancy_fraction: float = 0.05,
    redundancy_count: int = 3,
    gold_interval: int = 0,
    timeout_minutes: int = 30,
    seed: int = 0,
    created_by=None,
    task_options: Mapping[str, Any] | None = None,
) -> AnnotationBatch:
    """Sample games (by count or until a turn count is reached) into a new batch and its task.

    A fraction of the games (rounded, at least one when the fraction is positive) is wanted
    ``redundancy_count`` times; the sample and the redundant games are drawn with ``seed``.
    """
    name = free_text("name", name, max_chars=120)
    if not name:
        raise InputError("name", "is required")
    if (games is None) == (turns is None):
        raise InputError("games", "give either a number of games or a number of turns")
    for field, count in (("games", games), ("turns", turns)):
        if count is not None and count < 1:
            raise InputError(field, "must be at least 1")
    if not 0 <= redundancy_fraction <= 1:
        raise InputError("redundancy_fraction", "must be between 0 and 1")
    if not 2 <= redundancy_count <= 20:
        raise InputError("redundancy_count", "must be between 2 and 20")
    round_ = Round.objects.filter(study=study, index=round_index).first()
    if round_ is None:
        raise InputError("round", f"study {study.name!r} has no round {round_index}")
    system = System.objects.filter(round=round_, name=system_name).first()
    if system is None:
        raise InputError("system", f"round {round_index} has no system {system_name!r}")

    pool = list(eligible_games(round_, system).values_list("id", "n_turns"))
    rng = random.Random(seed)
    rng.shuffle(pool)
    if games is not None:
        if games > len(pool):
            raise InputError("games", f"{games} requested but only {len(pool)} games are eligible")
        chosen = pool[:games]
    else:
        assert turns is not None  # exactly one of games and turns, checked above
        chosen, total = [], 0
        for game_id, n_turns in pool:
            if total >= turns:
                break
            chosen.append((game_id, n_turns))
            total += n_turns
        if total < turns:
            raise InputError("turns", f"{turns} requested but only {total} turns are eligible")

    n_redundant = round(redundancy_fraction * len(chosen))
    if redundancy_fraction > 0:
        n_redundant = max(1, n_redundant)
    redundant = {game_id for game_id, _ in rng.sample(chosen, n_redundant)}
    batch = AnnotationBatch.objects.create(
        name=name,
        study=study,
        round=round_,
        system=system,
        redundancy_fraction=redundancy_fraction,
        redundancy_count=redundancy_count,
        gold_interval=gold_interval,
        timeout_minutes=timeout_minutes,
        seed=seed,
        created_by=created_by,
    )
    BatchItem.objects.bulk_create(
        BatchItem(
            batch=batch,
            game_id=game_id,
            position=position,
            required_annotations=redundancy_count if game_id in redundant else 1,
        )
        for position, (game_id, _) in enumerate(chosen)
    )
    create_task(batch=batch, name=name, **dict(task_options or {}))
    return batch


def create_task(
    *, name: str, batch: AnnotationBatch | None = None, round_: Round | None = None, **options
) -> CrowdTask:
    """A crowd task for a batch or a game round; ``options`` are ``CrowdTask`` fields."""
    allowed = {f.name for f in CrowdTask._meta.get_fields()} - {"id", "key", "batch", "round"}
    unknown = set(options) - allowed
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a task setting")
    for field in ("consent_text", "guidelines"):
        if field in options:
            options[field] = free_text(field, options[field], max_chars=20000)
    options.setdefault("consent_text", settings.ANNOTATION_DEFAULT_CONSENT)
    for field in ("prolific_study_id", "prolific_completion_code"):
        if options.get(field):
            options[field] = platform_id(field, str(options[field]))
    return CrowdTask.objects.create(name=name[:120], batch=batch, round=round_, **options)


@transaction.atomic
def add_gold_game(batch: AnnotationBatch, game: Game, answers: Sequence[Mapping]) -> BatchItem:
    """Mix a game with known answers into a batch. ``answers``: one mapping per turn with
    ``turn`` (index), ``action`` (canonical a*) and ``satisfaction`` ('' on the last turn)."""
    if game.round_id != batch.round_id:
        raise InputError("game", f"game {game.external_id} is not from the batch's round")
    if BatchItem.objects.filter(batch=batch, game=game).exists():
        raise InputError("game", f"game {game.external_id} is already in the batch")
    turns = list(game.turns.filter(selection_after__isnull=False).order_by("index"))
    by_index = {}
    for position, answer in enumerate(answers):
        index = answer.get("turn")
        if not isinstance(index, int) or not 0 <= index < len(turns):
            raise InputError(f"answers[{position}].turn", "is not a turn of the game")
        if index in by_index:
            raise InputError(f"answers[{position}].turn", f"turn {index} is given twice")
        by_index[index] = answer
    missing = sorted(set(range(len(turns))) - set(by_index))
    if missing:
        raise InputError("answers", f"turns {missing} have no answer")
    gold = []
    for turn in turns:
        answer = by_index[turn.index]
        action = _checked_action(f"answers[turn {turn.index}].action", answer.get("action"), turn)
        satisfaction = _checked_satisfaction(
            f"answers[turn {turn.index}].satisfaction",
            answer.get("satisfaction", ""),
            last=turn.index == len(turns) - 1,
        )
        gold.append((turn, action, satisfaction))
    position = batch.items.aggregate(m=Coalesce(Max("position"), -1))["m"] + 1
    item = BatchItem.objects.create(
        batch=batch, game=game, position=position, required_annotations=1, is_gold=True
    )
    GoldAnswer.objects.bulk_create(
        GoldAnswer(item=item, turn=turn, action=action, satisfaction=sat)
        for turn, action, sat in gold
    )
    return item


# --- the queue -----------------------------------------------------------------------------


def _cutoff(batch: AnnotationBatch):
    return timezone.now() - timedelta(minutes=batch.timeout_minutes)


def _live(cutoff) -> Q:
    """Assignments that hold a slot: submitted ones, and active ones not idle past time-out."""
    return Q(status=Assignment.Status.SUBMITTED) | Q(
        status=Assignment.Status.ACTIVE, last_activity_at__gte=cutoff
    )


def _holds_slot(assignment: Assignment) -> bool:
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
    if batch is None:
        raise ValueError(f"task {session.task.pk} is not an annotation task (it has no batch)")
    worker = session.worker
    now = timezone.now()
    with transaction.atomic():
        Worker.objects.select_for_update().filter(pk=worker.pk).first()
        current = (
            Assignment.objects.select_related("item", "batch")
            .filter(worker=worker, batch=batch, status=Assignment.Status.ACTIVE)
            .first()
        )
        if current is not None and _holds_slot(current):
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


# --- the survey ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Where an assignment stands: ``phase`` 1 or 2 of ``turn``; phase 0 is the final review."""

    turn: int
    phase: int

    @property
    def is_review(self) -> bool:
        return self.phase == 0


def current_step(turns: Sequence[Turn], answers: Mapping[int, TurnAnnotation]) -> Step:
    """The first unanswered step, derived from the answers given (never stored separately)."""
    last = len(turns) - 1
    for turn in turns:
        answer = answers.get(turn.pk)
        if answer is None:
            return Step(turn.index, 1)
        if turn.index < last and answer.phase2_at is None:
            return Step(turn.index, 2)
    return Step(len(turns), 0)


def survey_turns(game: Game) -> list[Turn]:
    """The answered turns of a game, with the fields the survey shows."""
    return list(
        game.turns.filter(selection_after__isnull=False)
        .only("game_id", "index", "utterance", "selection_before", "selection_after", "action")
        .order_by("index")
    )


def _checked_action(field: str, value: object, turn: Turn) -> str:
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


def _checked_satisfaction(field: str, value: object, *, last: bool) -> str:
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
    if assignment.status == Assignment.Status.RELEASED or not _holds_slot(assignment):
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
            value = _checked_action("action", payload["action"], turn)
        else:
            value = _checked_satisfaction("satisfaction", payload["satisfaction"], last=False)
        recorded = answers.get(turn.pk)
        if recorded is not None and (phase == 1 or recorded.phase2_at is not None):
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
        elif recorded is None:  # not reached: phase 2 comes after the turn's phase-1 answer
            raise InputError("phase", f"turn {turn_index} phase 1 is not answered yet")
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
        done = (
            Assignment.objects.filter(
                pk=assignment_id, worker=session.worker, status=Assignment.Status.SUBMITTED
            ).first()
            if isinstance(assignment_id, int)
            else None
        )
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


# --- crowd arrival, consent, quiz ----------------------------------------------------------


def arrive(
    task: CrowdTask,
    *,
    platform: str,
    worker_id: str | None,
    session_id: str | None,
    study_id: str | None = "",
    turk_submit_to: str | None = "",
) -> CrowdSession:
    """Find or open the crowd session of a platform arrival (validated, ids hashed)."""
    if not task.is_open:
        raise InputError("task", "this task is closed", status=410)
    id_field = {"prolific": "PROLIFIC_PID", "mturk": "workerId"}.get(platform, "worker_id")
    session_field = {"prolific": "SESSION_ID", "mturk": "assignmentId"}.get(platform, "session")
    study_field = {"prolific": "STUDY_ID", "mturk": "hitId"}.get(platform, "study")
    raw_worker = platform_id(id_field, worker_id)
    external = platform_id(session_field, session_id)
    study = platform_id(study_field, study_id, required=platform != "local")
    submit_to = ""
    if platform == Worker.Platform.PROLIFIC:
        if task.prolific_study_id and study != task.prolific_study_id:
            raise InputError("STUDY_ID", "does not match this task's Prolific study")
    elif platform == Worker.Platform.MTURK:
        mode = "sandbox" if task.mturk_sandbox else "production"
        submit_to = (turk_submit_to or "").rstrip("/")
        if submit_to != settings.ANNOTATION_MTURK_SUBMIT_HOSTS[mode]:
            raise InputError("turkSubmitTo", f"must be the MTurk {mode} submission host")
    worker = get_or_create_worker(platform, raw_worker)
    session, _ = CrowdSession.objects.get_or_create(
        task=task,
        platform=platform,
        external_id=external,
        defaults={"worker": worker, "platform_study_id": study, "turk_submit_to": submit_to},
    )
    if session.worker_id != worker.pk:
        raise InputError(session_field, "belongs to another participant", status=403)
    return session


def give_consent(session: CrowdSession) -> Consent:
    consent, _ = Consent.objects.get_or_create(worker=session.worker, task=session.task)
    return consent


def grade_quiz(worker: Worker, quiz: Quiz, answers: Mapping[str, object]) -> QuizAttempt:
    """Grade an attempt (question id → chosen index); a passed quiz is never retaken."""
    passed = quiz.attempts.filter(worker=worker, passed=True).first()
    if passed is not None:
        return passed
    with transaction.atomic():
        Worker.objects.select_for_update().filter(pk=worker.pk).first()
        used = quiz.attempts.filter(worker=worker).count()
        if used >= quiz.max_attempts:
            raise InputError("quiz", "no attempts left for this quiz", status=403)
        questions = list(quiz.questions.all())
        chosen: dict[str, int] = {}
        for question in questions:
            value = answers.get(str(question.pk))
            try:
                index = int(value) if isinstance(value, str | int | float) else None
            except ValueError:
                index = None
            if index is None:
                raise InputError(f"question {question.pk}", "has no answer")
            if not 0 <= index < len(question.choices):
                raise InputError(f"question {question.pk}", "the answer is not one of the choices")
            chosen[str(question.pk)] = index
        extra = set(answers) - set(chosen)
        if extra:
            raise InputError(f"question {sorted(extra)[0]}", "is not a question of this quiz")
        correct = sum(1 for q in questions if chosen[str(q.pk)] == q.correct_choice)
        score = round(100 * correct / len(questions)) if questions else 100
        return QuizAttempt.objects.create(
            worker=worker, quiz=quiz, answers=chosen, score=score, passed=score >= quiz.pass_mark
        )


def complete_session(session: CrowdSession) -> CrowdSession:
    if session.status != CrowdSession.Status.COMPLETED:
        CrowdSession.objects.filter(pk=session.pk).update(
            status=CrowdSession.Status.COMPLETED, completed_at=timezone.now()
        )
        session.refresh_from_db(fields=["status", "completed_at"])
    return session
