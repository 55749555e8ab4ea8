"""Writes of crowd sessions: arrival, consent, quiz attempts, the session's course, bonuses.

The other writes of the annotation app sit in modules by topic: batches, crowd tasks and quizzes
(``annotation.creation``), gold games (``annotation.gold``), the work queue
(``annotation.work_queue``), survey answers (``annotation.survey``), MTurk HITs and payouts
(``annotation.mturk``).

Every function validates before it writes and writes inside one transaction, so refused input
changes nothing. Refusals raise ``InputError`` naming the field; the API's exception handler
(``config.errors``) turns it into a response.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from games.models import Worker
from games.workers import get_or_create_worker

from . import selectors
from .models import Bonus, Consent, CrowdSession, CrowdTask, Quiz, QuizAttempt
from .validation import InputError, free_text, platform_id
from .work_queue import claim_next

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
                index = int(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InputError(f"question {question.pk}", "has no answer") from None
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


def continue_session(session: CrowdSession) -> None:
    """After a submitted game: complete the session once it has its games, else claim the next."""
    if selectors.games_done(session) >= session.task.games_per_session:
        complete_session(session)
    elif session.status != CrowdSession.Status.COMPLETED:
        claim_next(session)


def finish_early(session: CrowdSession) -> None:
    """Complete a session before its number of games, allowed only when no work is left."""
    if session.status == CrowdSession.Status.COMPLETED:
        return
    if not selectors.games_done(session):
        raise InputError("session", "submit at least one game first")
    if claim_next(session) is not None:
        raise InputError("session", "finish your current game first", status=409)
    complete_session(session)


# --- bonuses -------------------------------------------------------------------------------


def grant_bonus(session: CrowdSession, amount: Decimal, reason: object, created_by) -> Bonus:
    """A bonus for a session's worker; ``reason`` is free text (no markup, at most 200 chars)."""
    return Bonus.objects.create(
        worker=session.worker,
        session=session,
        amount=amount,
        reason=free_text("reason", reason, max_chars=200),
        created_by=created_by,
    )
