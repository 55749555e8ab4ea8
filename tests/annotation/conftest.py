"""Builders for annotation tests: systems with small ended games, crowd tasks and sessions."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import creation, services, survey, work_queue
from annotation.models import Assignment, CrowdSession, Quiz, QuizQuestion
from annotation.tokens import session_token
from tests.factories import make_game, make_study, make_system

# make_game's listener order is page9-9 … page9-0, so page9-9 is A, page9-8 is B, page9-7 is C.
A, B, C = "page9-9", "page9-8", "page9-7"
THREE_TURNS = [[A], [A, B], [A, B, C]]
UTTERANCES = ["the bird", "now the boat", "and the house"]


@pytest.fixture
def system(db):
    return make_system(make_study("annotation-study"), 0, "B-FFT")


def add_games(system, count: int, prefix: str = "g") -> list:
    return [
        make_game(system, THREE_TURNS, UTTERANCES, external_id=f"{prefix}{n}") for n in range(count)
    ]


def make_batch(system, games: int, **options):
    add_games(system, games)
    options.setdefault("redundancy_fraction", 0.0)
    task_options = {"prolific_completion_code": "C0DE42"} | options.pop("task_options", {})
    return creation.create_batch(
        study=system.round.study,
        round_index=system.round.index,
        system_name=system.name,
        name=options.pop("name", "batch"),
        games=games,
        task_options=task_options,
        **options,
    )


def arrive(task, pid: str, session_id: str | None = None, *, consent: bool = True) -> CrowdSession:
    session = services.arrive(
        task,
        platform="prolific",
        worker_id=pid,
        session_id=session_id or f"S-{pid}",
        study_id="STUDY1",
    )
    if consent:
        services.give_consent(session)
    return session


def answer_turns(
    session: CrowdSession, assignment: Assignment, answers: Iterable[tuple[str, str | None]]
) -> None:
    """Annotate the assignment's game through the services, turn by turn: ``answers`` holds each
    turn's action and satisfaction; no satisfaction (the last turn has none) skips phase 2."""
    for turn, (action, satisfaction) in enumerate(answers):
        survey.submit_answer(
            session, {"assignment": assignment.pk, "turn": turn, "phase": 1, "action": action}
        )
        if satisfaction:
            survey.submit_answer(
                session,
                {
                    "assignment": assignment.pk,
                    "turn": turn,
                    "phase": 2,
                    "satisfaction": satisfaction,
                },
            )


def annotate(
    session: CrowdSession, answers: Iterable[tuple[str, str | None]], *, submit: bool = True
) -> Assignment:
    """Claim the session's next game, annotate it with ``answers`` (see ``answer_turns``) and,
    unless ``submit`` is false, submit it."""
    assignment = work_queue.claim_next(session)
    answer_turns(session, assignment, answers)
    if submit:
        survey.submit_game(session, {"assignment": assignment.pk})
    return assignment


def worker_client(session: CrowdSession) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_WORKER_TOKEN=session_token(session))
    return client


def make_quiz(pass_mark: int = 100, max_attempts: int = 2) -> Quiz:
    quiz = Quiz.objects.create(name="q", pass_mark=pass_mark, max_attempts=max_attempts)
    QuizQuestion.objects.create(
        quiz=quiz,
        position=0,
        text="Who sees the targets?",
        choices=["speaker", "listener"],
        correct_choice=0,
    )
    QuizQuestion.objects.create(
        quiz=quiz,
        position=1,
        text="Can the listener do nothing?",
        choices=["no", "yes"],
        correct_choice=1,
    )
    return quiz


@pytest.fixture
def ticking_signatures(monkeypatch):
    """Every signed token is stamped one second after the one before, as if each were made in a
    new second: a test that compares two tokens made apart fails at once, not now and then."""
    from django.core import signing

    issued = itertools.count(int(time.time()))
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(next(issued))
    )


def token_of(url: str, suffix: str = "") -> str:
    """The worker token of a worker page's URL (``/annotation/w/<token>/<suffix>``)."""
    prefix = reverse("annotation:entry", kwargs={"token": "T"}).removesuffix("T/")
    assert url.startswith(prefix) and url.endswith(f"/{suffix}"), url
    return url.removeprefix(prefix).removesuffix(f"/{suffix}").rstrip("/")
