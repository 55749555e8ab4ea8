"""Builders for live-play tests: a study with ten main-split tangrams, rounds and workers.

Rounds are made with an open lobby unless a test says otherwise; ``participant`` makes a
crowdworker the lobby admits (a started crowd session of the round's task, consent given)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.sessions.backends.db import SessionStore

from games.live import lobby
from games.live.clock import FakeClock
from games.models import Game, GameConfig, Round, Study, System, Tangram, Worker
from games.workers import SESSION_KEY, get_or_create_worker

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
NAMES = [f"page1-{i}" for i in range(10)]


def tangrams(count: int = 12) -> list[str]:
    names = [f"page1-{i}" for i in range(count)]
    for name in names:
        Tangram.objects.get_or_create(name=name, defaults={"split": "train"})
    return names


def study(name: str = "live", **settings) -> Study:
    return Study.objects.create(name=name, **settings)


def round_with(study_: Study, *systems: str, index: int = 0, **fields) -> Round:
    fields.setdefault("lobby_open", True)
    round_ = Round.objects.create(study=study_, index=index, **fields)
    for name in systems:
        System.objects.create(
            round=round_, name=name, policy_checkpoint="" if name == "HH" else "random"
        )
    return round_


def worker(name: str) -> Worker:
    return get_or_create_worker(Worker.Platform.LOCAL, name)


def crowd_task(round_: Round, **options):
    """The round's crowd task (made on first use)."""
    from annotation import creation
    from annotation.models import CrowdTask

    task = CrowdTask.objects.filter(round=round_).first()
    options = {"prolific_completion_code": "PLAYCODE"} | options
    return task or creation.create_task(name=f"play {round_}", round_=round_, **options)


def arrival(task, name: str, *, consent: bool = True):
    """A Prolific arrival at ``task`` (the crowd session), with consent given unless told."""
    from annotation import services

    session = services.arrive(
        task, platform="prolific", worker_id=name, session_id=f"S-{name}", study_id="STUDY1"
    )
    if consent:
        services.give_consent(session)
    return session


def participant(round_: Round, name: str) -> Worker:
    """A crowdworker admitted to the round's lobby."""
    return arrival(crowd_task(round_), name).worker


def session_cookie(worker_: Worker) -> str:
    """A saved browser session of the worker (what login_worker makes), as a cookie value."""
    session = SessionStore()
    session[SESSION_KEY] = worker_.pk
    session.save()
    return session.session_key


def config(study_: Study, targets: int = 3) -> GameConfig:
    """A fixed config: speaker order NAMES, listener order reversed (page1-9 is letter A)."""
    return GameConfig.objects.create(
        study=study_,
        speaker_order=NAMES,
        listener_order=list(reversed(NAMES)),
        targets=NAMES[:targets],
    )


def pair_game(round_: Round, speaker: Worker, listener: Worker | None, clock: FakeClock) -> Game:
    """Put the workers in the lobby in this order and pair them (the first speaks)."""
    import random

    lobby.arrive(round_, speaker)
    clock.advance(1)
    if listener is not None:
        lobby.arrive(round_, listener)

    class First(random.Random):
        def random(self) -> float:
            return 0.0

    pairings = lobby.try_pair(round_.pk, rng=First())
    assert len(pairings) == 1
    return Game.objects.get(pk=pairings[0].game_id)
