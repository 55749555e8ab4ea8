"""Reads of the annotation app: what a worker sees, batch progress, gold accuracy, agreement.

What a worker sees never includes targets, outcomes, other games or other workers. Pay is read
by ``annotation.earnings``. Selectors never import services: services build on selectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from games.actions import tangrams_to_letters
from games.models import Game, Turn, Worker
from games.tangrams import tangram_image_url

from . import agreement as agreement_stats
from .models import (
    AnnotationBatch,
    Assignment,
    BatchItem,
    Consent,
    CrowdSession,
    CrowdTask,
    GoldAnswer,
    QuizAttempt,
    Satisfaction,
    TurnAnnotation,
)

SATISFACTION_OPTIONS = [
    {"value": value, "label": label, "key": str(position + 1)}
    for position, (value, label) in enumerate(Satisfaction.choices)
    if value
]
NO_COMPLETION_CODE = (
    "This task has no Prolific completion code yet, so we cannot send you back to Prolific. "
    "Your work is saved: please message the researcher on Prolific, who will approve it."
)


# --- the worker's flow ---------------------------------------------------------------------


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


def has_consented(session: CrowdSession) -> bool:
    return Consent.objects.filter(worker_id=session.worker_id, task_id=session.task_id).exists()


def quiz_status(session: CrowdSession) -> str:
    """``passed`` (or no quiz), ``open`` (attempts left) or ``failed`` (none left)."""
    quiz = session.task.quiz
    if quiz is None:
        return "passed"
    attempts = QuizAttempt.objects.filter(worker_id=session.worker_id, quiz=quiz)
    if attempts.filter(passed=True).exists():
        return "passed"
    return "failed" if attempts.count() >= quiz.max_attempts else "open"


def games_done(session: CrowdSession) -> int:
    return session.assignments.filter(status=Assignment.Status.SUBMITTED).count()


def current_assignment(session: CrowdSession) -> Assignment | None:
    """The worker's active game in the session's batch (None once the session is complete)."""
    if session.status == CrowdSession.Status.COMPLETED:
        return None
    return (
        session.worker.assignments.filter(batch=session.task.batch_id, status="active")
        .select_related("item__game__config", "batch")
        .first()
    )


def completion(session: CrowdSession) -> dict[str, object]:
    """How the worker goes back to their platform once the session is complete."""
    task = session.task
    if session.platform == Worker.Platform.PROLIFIC:
        code = task.prolific_completion_code
        if not code:  # never send a worker to Prolific with an empty code (cc=)
            return {"kind": "message", "message": NO_COMPLETION_CODE}
        url = settings.ANNOTATION_PROLIFIC_COMPLETION_URL.format(code=quote(code))
        return {"kind": "redirect", "url": url, "code": code}
    if session.platform == Worker.Platform.MTURK:
        return {
            "kind": "mturk_submit",
            "action": f"{session.turk_submit_to}/mturk/externalSubmit",
            "fields": {"assignmentId": session.external_id, "done": "1"},
        }
    return {"kind": "message"}


def assignment_view(
    assignment: Assignment,
    turns: list[Turn] | None = None,
    answers: dict[int, TurnAnnotation] | None = None,
) -> dict[str, object]:
    """The worker's view of one game: images, the conversation so far, the current step.

    ``turns`` and ``answers`` (turn id → answer) may be passed when the caller has them."""
    game = assignment.item.game
    order = list(game.config.listener_order)
    letters = dict(zip(order, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", strict=False))
    if turns is None:
        turns = survey_turns(game)
    if answers is None:
        answers = {a.turn_id: a for a in TurnAnnotation.objects.filter(assignment=assignment)}
    step = current_step(turns, answers)

    def selected(tangrams) -> list[str]:
        return sorted(tangrams_to_letters(order, tangrams))

    history = []
    for turn in turns:
        answer = answers.get(turn.pk)
        if answer is None:
            break
        history.append(
            {
                "turn": turn.index,
                "utterance": turn.utterance,
                "your_action": answer.annotated_action,
                "listener_action": turn.action,
                "selection_after": selected(turn.selection_after),
                "satisfaction": answer.satisfaction,
            }
        )
    view: dict[str, object] = {
        "id": assignment.pk,
        "turn_count": len(turns),
        "images": [{"letter": letters[t], "url": tangram_image_url(t)} for t in order],
        "history": history,
        "step": None,
    }
    if not step.is_review:
        turn = turns[step.turn]
        current: dict[str, object] = {
            "turn": step.turn,
            "phase": step.phase,
            "utterance": turn.utterance,
            "selection": selected(turn.selection_before),
            "last": step.turn == len(turns) - 1,
        }
        if step.phase == 2:
            answer = answers[turn.pk]
            current.update(
                your_action=answer.annotated_action,
                listener_action=turn.action,
                selection_after=selected(turn.selection_after),
                follow_up=turns[step.turn + 1].utterance,
            )
        view["step"] = current
    return view


def worker_state(
    session: CrowdSession, assignment: Assignment | None, **known
) -> dict[str, object]:
    """The whole state a survey page renders, as sent by the API (``known``: the ``turns`` and
    ``answers`` of the assignment, when the caller has them)."""
    task = session.task
    done = games_done(session)
    state: dict[str, object] = {
        "games_done": done,
        "games_per_session": task.games_per_session,
        "satisfaction_options": SATISFACTION_OPTIONS,
    }
    if session.status == CrowdSession.Status.COMPLETED:
        state.update(status="complete", completion=completion(session))
    elif assignment is not None:
        view = assignment_view(assignment, **known)
        state.update(status="review" if view["step"] is None else "annotating", game=view)
    elif done:
        state.update(status="can_complete")
    else:
        state.update(status="no_work")
    return state


# --- researchers: progress and gold accuracy -----------------------------------------------


def batches() -> QuerySet[AnnotationBatch]:
    """Every batch, with the round and system its summary names."""
    return AnnotationBatch.objects.select_related("round", "system")


def study_game(batch: AnnotationBatch, external_id: str) -> Game | None:
    """The game of the batch's study with this external id, if there is one."""
    return Game.objects.filter(study=batch.study, external_id=external_id).first()


def batch_progress(batch: AnnotationBatch) -> dict[str, int]:
    # distinct: the two joins (assignments, turns) would otherwise multiply each other's counts
    items = batch.items.filter(is_gold=False).annotate(
        submitted=Count(
            "assignments",
            filter=Q(assignments__status=Assignment.Status.SUBMITTED),
            distinct=True,
        ),
        active=Count(
            "assignments", filter=Q(assignments__status=Assignment.Status.ACTIVE), distinct=True
        ),
        n_turns=Count(
            "game__turns", filter=Q(game__turns__selection_after__isnull=False), distinct=True
        ),
    )
    games = wanted = done = in_progress = complete = turns = redundant = 0
    for item in items:
        games += 1
        turns += item.n_turns
        wanted += item.required_annotations
        done += min(item.submitted, item.required_annotations)
        in_progress += item.active
        complete += item.submitted >= item.required_annotations
        redundant += item.required_annotations > 1
    return {
        "games": games,
        "turns": turns,
        "redundant_games": redundant,
        "gold_games": batch.items.filter(is_gold=True).count(),
        "annotations_wanted": wanted,
        "annotations_submitted": done,
        "assignments_in_progress": in_progress,
        "games_complete": complete,
        "workers": Assignment.objects.filter(batch=batch).values("worker").distinct().count(),
    }


@dataclass
class GoldAccuracy:
    worker_hash: str
    turns: int = 0
    action_correct: int = 0
    satisfaction_turns: int = 0
    satisfaction_correct: int = 0

    @property
    def action_accuracy(self) -> float | None:
        return self.action_correct / self.turns if self.turns else None

    @property
    def satisfaction_accuracy(self) -> float | None:
        if not self.satisfaction_turns:
            return None
        return self.satisfaction_correct / self.satisfaction_turns


def gold_accuracy(batch: AnnotationBatch) -> list[GoldAccuracy]:
    """Per worker, agreement with the known answers of the gold games they submitted."""
    gold = {g.turn_id: g for g in GoldAnswer.objects.filter(item__batch=batch, item__is_gold=True)}
    rows: dict[int, GoldAccuracy] = {}
    answers = TurnAnnotation.objects.filter(
        assignment__batch=batch,
        assignment__item__is_gold=True,
        assignment__status=Assignment.Status.SUBMITTED,
    ).select_related("worker")
    for answer in answers:
        known = gold.get(answer.turn_id)
        if known is None:
            continue
        row = rows.setdefault(answer.worker_id, GoldAccuracy(answer.worker.id_hash))
        row.turns += 1
        row.action_correct += answer.annotated_action == known.action
        if known.satisfaction:
            row.satisfaction_turns += 1
            row.satisfaction_correct += answer.satisfaction == known.satisfaction
    return sorted(rows.values(), key=lambda r: r.worker_hash)


# --- admins: agreement ---------------------------------------------------------------------


def agreement_items(batch: AnnotationBatch) -> list[dict[str, Any]]:
    """Turns of the batch's regular games annotated (and submitted) by several workers."""
    redundant = BatchItem.objects.filter(batch=batch, is_gold=False)
    answers = (
        TurnAnnotation.objects.filter(
            assignment__item__in=redundant, assignment__status=Assignment.Status.SUBMITTED
        )
        .select_related("turn__game", "worker")
        .order_by("turn__game_id", "turn__index", "worker__id_hash")
    )
    grouped: dict[int, dict[str, Any]] = {}  # JSON objects, answers a list of them
    for answer in answers:
        turn = answer.turn
        item = grouped.setdefault(
            turn.pk,
            {
                "game": turn.game.external_id,
                "turn": turn.index,
                "utterance": turn.utterance,
                "listener_action": turn.action,
                "answers": [],
            },
        )
        item["answers"].append(
            {
                "worker": answer.worker.id_hash,
                "action": answer.annotated_action,
                "correct": answer.annotated_action == turn.action,
                "satisfaction": answer.satisfaction,
                "phase1_seconds": answer.phase1_seconds,
                "phase2_seconds": answer.phase2_seconds,
            }
        )
    return [item for item in grouped.values() if len(item["answers"]) >= 2]


def agreement_report(batch: AnnotationBatch) -> dict[str, Any]:
    items = agreement_items(batch)
    ratings = [
        [
            agreement_stats.Rating(
                a["worker"], a["action"], item["listener_action"], a["satisfaction"]
            )
            for a in item["answers"]
        ]
        for item in items
    ]
    stats = agreement_stats.agreement(ratings)
    return {
        "batch": {"id": batch.pk, "name": batch.name},
        "statistics": {name: s.as_dict() for name, s in stats.items()},
        "items": items,
    }


def task_for(batch: AnnotationBatch) -> CrowdTask | None:
    return CrowdTask.objects.filter(batch=batch).first()
