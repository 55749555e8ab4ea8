"""load_demo: users, tangrams, and a study of simulated games; running it again changes nothing."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from games.actions import action_between
from games.demo import DEMO_SYSTEMS, simulate_game
from games.models import Game, Round, Study, System, Tangram, Turn
from games.roles import is_admin, is_researcher
from tests.viewer.helpers import png_bytes, stored_files

pytestmark = pytest.mark.django_db

DEMO_GAMES = sum(system.games for system in DEMO_SYSTEMS)


def load_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        "games": sorted(
            Game.objects.values_list("external_id", "outcome", "round__index", "system__name")
        ),
        "turns": sorted(Turn.objects.values_list("game__external_id", "index", "action")),
        "tangrams": sorted(Tangram.objects.values_list("name", "split", "image")),
    }


def test_load_demo_creates_users_tangrams_and_games_and_is_idempotent(media_root, settings):
    settings.DEBUG = True  # the demo's known passwords are given with DEBUG on only
    first = load_demo()
    assert "Demo users created: researcher, admin." in first
    assert f"Demo study: {DEMO_GAMES} games created, 0 already present." in first
    state, files = snapshot(), stored_files(media_root)

    second = load_demo()
    assert "Demo users created: none (already there)." in second
    assert "60 unchanged" in second
    assert f"Demo study: 0 games created, {DEMO_GAMES} already present." in second
    assert snapshot() == state
    assert stored_files(media_root) == files

    researcher = authenticate(username="researcher", password="respect-demo")
    admin = authenticate(username="admin", password="respect-demo")
    assert is_researcher(researcher) and not is_admin(researcher)
    assert is_admin(admin) and admin.is_superuser


def test_demo_study_is_plausible(media_root):
    load_demo()
    study = Study.objects.get(name="Demo study")
    assert list(Round.objects.filter(study=study).values_list("index", flat=True)) == [0, 1, 2]
    systems = set(System.objects.filter(round__study=study).values_list("round__index", "name"))
    assert systems == {(s.round_index, s.name) for s in DEMO_SYSTEMS}
    games = Game.objects.filter(study=study)
    assert games.count() == DEMO_GAMES
    outcomes = set(games.values_list("outcome", flat=True))
    assert outcomes == {"successful", "unsuccessful", "idle"}
    assert set(games.filter(outcome="idle").values_list("end_reason", flat=True)) == {
        "listener idled",
        "speaker idled",
    }
    assert games.filter(outcome="unsuccessful").first().turns.count() == study.turn_limit
    tangrams = set(
        Tangram.objects.filter(split__in=["train", "test"]).values_list("name", flat=True)
    )
    for game in games.select_related("config", "system").prefetch_related("turns"):
        config = game.config
        assert set(config.speaker_order) <= tangrams  # games use the main split only
        assert 3 <= len(config.targets) <= 5
        human = game.system.name == "HH"
        assert (game.listener_id is not None) == human
        for turn in game.turns.all():
            if turn.selection_after is None:
                continue
            expected = action_between(
                config.listener_order, turn.selection_before, turn.selection_after
            )
            assert turn.action == expected
            assert (turn.action_probability is None) == human
    utterances = " ".join(Turn.objects.values_list("utterance", flat=True))
    assert "no, the other one" in utterances and "pick the " in utterances


def test_simulated_games_are_seeded():
    def play(seed: str):
        return simulate_game(
            random.Random(seed),
            "g",
            [f"page1-{i}" for i in range(20)],
            skill=0.4,
            is_model=True,
            turn_limit=10,
            started=datetime(2024, 1, 1, tzinfo=UTC),
            speaker="s",
            listener=None,
        )

    assert play("a") == play("a")
    assert play("a") != play("b")


def test_load_demo_uses_kilogram_images_from_tangram_dir(tmp_path, settings):
    directory = tmp_path / "tangrams"
    directory.mkdir()
    names = [f"page2-{i}" for i in range(14)]
    for shade, name in enumerate(names):
        (directory / f"{name}.png").write_bytes(png_bytes(shade * 10))
    (tmp_path / "splits.json").write_text(
        json.dumps({"splits": {"dev": names[:2], "train": names[2:8], "test": names[8:]}})
    )
    settings.TANGRAM_DIR = str(directory)
    load_demo()
    assert not Tangram.objects.filter(source="generated").exists()
    used = {name for config in Game.objects.values_list("config__speaker_order", flat=True)
            for name in config}  # fmt: skip
    assert used <= set(names[2:])
