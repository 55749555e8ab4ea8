"""The started live game of the play tests: the helpers' study, tangrams and fixed config, one
system, a speaker and (for a human listener) a listener, opened by the engine."""

from __future__ import annotations

from datetime import datetime

from games.models import Game, Worker
from tests.factories import start_live_game

from . import helpers


def start_game(
    now: datetime,
    system_name: str = "HH",
    *,
    listener: bool = True,
    external_id: str = "g1",
    names: tuple[str, str] = ("speaker", "listener"),
    **study_settings,
) -> tuple[Game, Worker, Worker | None]:
    """A game at turn 0 started at ``now``; ``names`` are the speaker's and listener's local
    worker ids, ``study_settings`` fields of the study. Returns the game and its players."""
    helpers.tangrams()
    study = helpers.study(**study_settings)
    round_ = helpers.round_with(study, system_name)
    speaker = helpers.worker(names[0])
    hearer = helpers.worker(names[1]) if listener else None
    game = start_live_game(
        round_.systems.get(),
        helpers.config(study),
        speaker,
        hearer,
        now=now,
        external_id=external_id,
    )
    return game, speaker, hearer
