"""Scripted speakers play through the real engine: against an oracle, a wrong listener, idle."""

from __future__ import annotations

import random

import pytest

from games.live import clock
from games.models import Game, GameConfig, Round, Study, System, Tangram, Worker
from games.sim.driver import oracle_listener, play_game, simulated_now, wrong_listener
from games.sim.speaker import Population, SpeakerView, speak, tangram_name
from games.workers import get_or_create_worker
from tests.factories import start_live_game

pytestmark = pytest.mark.django_db

NAMES = [f"page7-{i}" for i in range(10)]


def human_game(targets: list[str], turn_limit: int = 10, **study) -> Game:
    for name in NAMES:
        Tangram.objects.get_or_create(name=name, defaults={"split": "train"})
    study_row = Study.objects.create(
        name=f"sim-{Study.objects.count()}", turn_limit=turn_limit, **study
    )
    round_ = Round.objects.create(study=study_row, index=0)
    system = System.objects.create(round=round_, name="HH")
    config = GameConfig.objects.create(
        study=study_row,
        speaker_order=NAMES,
        listener_order=list(reversed(NAMES)),
        targets=targets,
    )
    return start_live_game(
        system,
        config,
        get_or_create_worker(Worker.Platform.LOCAL, "speaker"),
        get_or_create_worker(Worker.Platform.LOCAL, "listener"),
        now=clock.now(),
        external_id="sim-1",
    )


@pytest.mark.parametrize("refer", ["letters", "names", "mixed"])
@pytest.mark.parametrize("targets", [NAMES[:3], NAMES[2:7]])
def test_oracle_listener_succeeds_in_as_many_turns_as_targets(refer, targets):
    game = human_game(targets)
    played = play_game(game.pk, Population(refer=refer), "seed", listener=oracle_listener)
    game.refresh_from_db()
    assert game.outcome == Game.Outcome.SUCCESSFUL
    assert game.turns.count() == len(targets)
    assert played.satisfied == [True] * (len(targets) - 1)


def test_wrong_listener_is_corrected_until_the_turn_limit():
    game = human_game(NAMES[:3], turn_limit=6)
    played = play_game(game.pk, Population(reset=0.0, correct=1.0), "s", listener=wrong_listener)
    game.refresh_from_db()
    assert game.outcome == Game.Outcome.UNSUCCESSFUL
    turns = list(game.turns.order_by("index"))
    assert len(turns) == 6
    assert all(t.utterance.startswith(("no", "wrong", "that's", "nope")) for t in turns[1:])
    assert "deselect" in turns[1].utterance or "remove" in turns[1].utterance
    assert played.satisfied == [False] * 5


def test_idle_speaker_ends_the_game_as_idle():
    with clock.use_clock(simulated_now):
        game = human_game(NAMES[:3], idle_ends_game=True)
        play_game(game.pk, Population(idle=1.0), "s", listener=oracle_listener)
    game.refresh_from_db()
    assert game.outcome == Game.Outcome.IDLE
    assert game.end_reason == "speaker idled"


def test_speakers_are_deterministic_and_name_targets_as_configured():
    view = SpeakerView(
        listener_order=tuple(reversed(NAMES)),
        targets=frozenset(NAMES[:3]),
        selection=frozenset(),
        turn_index=0,
    )
    first = speak(view, Population(refer="names", seed=4), random.Random(1))
    again = speak(view, Population(refer="names", seed=4), random.Random(1))
    assert first == again
    (asked,) = first.asked
    assert tangram_name(asked, 4) in first.text
    letters = speak(view, Population(refer="letters"), random.Random(1))
    (asked,) = letters.asked
    assert letters.text.split()[-1] == "ABCDEFGHIJ"[list(reversed(NAMES)).index(asked)]
    assert tangram_name("page7-1", 4) == tangram_name("page7-1", 4) != tangram_name("page7-1", 5)
    with pytest.raises(ValueError, match="refer must be one of"):
        Population(refer="pointing")
