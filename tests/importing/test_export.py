"""Exporting as JSONL, and importing the export into another study (round trip)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from games.models import Game, Study, Turn
from tests.sample_files import SAMPLE_JSON, SAMPLE_PKL

EZ = "ezCwNpbfDkoChK9Fm"
RAW_SPEAKER = "007df91b3e539be211415c007692a712"


def command(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue().strip()


def game_snapshot(study_name: str) -> dict[str, tuple]:
    """Everything an import stores about a game, by game id."""
    games = Game.objects.filter(study__name=study_name).select_related(
        "config", "speaker", "listener", "round", "system"
    )
    snapshot = {}
    for game in games:
        turns = [
            (
                t.index,
                t.utterance,
                t.selection_before,
                t.selection_after,
                t.action,
                t.action_reason,
                t.action_probability,
                t.speaker_seconds,
                t.listener_seconds,
            )
            for t in Turn.objects.filter(game=game).order_by("index")
        ]
        snapshot[game.external_id] = (
            game.round.index,
            game.system.name,
            game.config.speaker_order,
            game.config.listener_order,
            game.config.targets,
            game.status,
            game.outcome,
            game.end_reason,
            game.speaker.id_hash,
            game.listener.id_hash,
            game.started_at,
            game.ended_at,
            game.metadata,
            turns,
        )
    return snapshot


@pytest.fixture
def imported(sample_tangrams):
    command("import_games", str(SAMPLE_PKL), study="A", round=1, system="B-FFT")


def test_export_writes_one_game_per_line(imported, tmp_path):
    path = tmp_path / "a.jsonl"
    assert command("export_games", study="A", format="jsonl", output=str(path)) == (
        f"exported 24 games (168 turns) to {path}"
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 24
    game = next(json.loads(line) for line in lines if EZ in line)
    assert game["game_id"] == EZ
    assert (game["round"], game["system"], game["outcome"]) == (1, "B-FFT", "successful")
    assert game["end_reason"] == "successful"
    assert game["context"][:2] == ["page5-128", "page1-6"]
    assert game["listener_order"][:2] == ["page3-168", "page5-128"]
    assert game["targets"] == ["page5-128", "page1-36", "page2-105", "page6-122"]
    assert len(game["turns"]) == 6
    assert game["turns"][4] == {
        "index": 4,
        "utterance": "undo that, deselect it",
        "selection_before": ["page5-128", "page2-105", "page1-36", "page2-61"],
        "selection_after": ["page5-128", "page2-105", "page1-36"],
        "action": "deselect J",
        "action_reason": "",
        "probability": None,
        "speaker_seconds": 5.0,
        "listener_seconds": 4.077999999999999,
        "started_at": None,
        "utterance_at": None,
        "submitted_at": None,
    }
    assert len(game["speaker"]) == 64 and len(game["listener"]) == 64


def test_export_holds_no_raw_worker_ids(imported, tmp_path):
    path = tmp_path / "a.jsonl"
    command("export_games", study="A", format="jsonl", output=str(path))
    text = path.read_text()
    assert RAW_SPEAKER not in text
    assert '"bob"' not in text
    assert "1af7a569b43b5bb7b47a4acac65baf4a" not in text  # the sample's "s ip" field


def test_round_trip_reproduces_the_games(imported, tmp_path):
    path = tmp_path / "a.jsonl"
    command("export_games", study="A", format="jsonl", output=str(path))
    assert command("import_games", str(path), study="B", round=1, system="B-FFT") == (
        "imported 24 games (168 turns)"
    )
    original, copy = game_snapshot("A"), game_snapshot("B")
    assert len(copy) == 24
    assert copy == original
    assert command("import_games", str(path), study="B", round=1, system="B-FFT") == (
        "nothing to import: all 24 games already present"
    )
    # The same workers are referenced, not new ones.
    assert Game.objects.filter(study__name="B").values("speaker").distinct().count() == 8
    second = tmp_path / "b.jsonl"
    command("export_games", study="B", format="jsonl", output=str(second))
    assert second.read_text() == path.read_text().replace('"study": "A"', '"study": "B"')


def test_round_trip_of_idle_games_and_model_probabilities(sample_tangrams, tmp_path):
    from games.importing import import_game_records
    from games.records import GameRecord, TurnRecord

    study = Study.objects.create(name="idle")
    context = (
        "page5-128",
        "page1-6",
        "page6-122",
        "page7-121",
        "page2-105",
        "page3-167",
        "page2-61",
        "page3-168",
        "page8-246",
        "page1-36",
    )
    listener = tuple(reversed(context))  # page1-36 is A, page5-128 is J
    record = GameRecord(
        game_id="idle-1",
        speaker_order=context,
        listener_order=listener,
        targets=context[:3],
        outcome="idle",
        end_reason="listener idled",
        turns=(
            TurnRecord("the bird", (), ("page5-128",), "select J", action_probability=0.25),
            TurnRecord("nothing", ("page5-128",), ("page5-128",), "", action_probability=0.5),
            TurnRecord("the house", ("page5-128",), None, "", action_reason="listener_idled"),
        ),
        speaker="worker-7",
    )
    import_game_records([record], study=study, round_index=0, system_name="T-RL")
    path = tmp_path / "idle.jsonl"
    command("export_games", study="idle", format="jsonl", output=str(path))
    exported = json.loads(path.read_text())
    assert exported["outcome"] == "idle" and exported["end_reason"] == "listener idled"
    assert [t["action"] for t in exported["turns"]] == ["select J", "", ""]
    assert [t["probability"] for t in exported["turns"]] == [0.25, 0.5, None]
    assert exported["turns"][2]["selection_after"] is None
    assert exported["listener"] is None
    command("import_games", str(path), study="idle-copy", round=0, system="T-RL")
    assert turn_rows("idle-copy") == turn_rows("idle")


def turn_rows(study_name: str) -> list[tuple]:
    return list(
        Turn.objects.filter(game__study__name=study_name)
        .order_by("index")
        .values_list(
            "utterance", "selection_after", "action", "action_reason", "action_probability"
        )
    )


def test_export_filters_by_round_and_system(sample_tangrams, tmp_path):
    command("import_games", str(SAMPLE_JSON), study="A", round=0, system="HH")
    records = json.loads(SAMPLE_JSON.read_text())
    renamed = {f"{key}-r1": dict(raw, _id=f"{key}-r1") for key, raw in list(records.items())[:5]}
    other = tmp_path / "r1.json"
    other.write_text(json.dumps(renamed))
    command("import_games", str(other), study="A", round=1, system="B-FFT")
    out = tmp_path / "out.jsonl"
    assert command("export_games", study="A", output=str(out), round=1).startswith(
        "exported 5 games"
    )
    assert command("export_games", study="A", output=str(out), system="HH").startswith(
        "exported 24 games"
    )
    assert command("export_games", study="A", output=str(out), round=1, system="HH").startswith(
        "exported 0 games"
    )


def test_export_of_an_unknown_study(db, tmp_path):
    with pytest.raises(CommandError, match="no study named 'nope'"):
        command("export_games", study="nope", output=str(tmp_path / "x.jsonl"))
    assert not (tmp_path / "x.jsonl").exists()


def test_export_to_standard_output(imported, tmp_path):
    path = tmp_path / "a.jsonl"
    command("export_games", study="A", format="jsonl", output=str(path))
    assert command("export_games", study="A", output="-") + "\n" == path.read_text()
