"""Importing into the database: counts, idempotence, all-or-nothing, the command's messages."""

from __future__ import annotations

import pickle
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from games.importing import import_game_records, read_records
from games.models import Game, GameConfig, Round, Study, System, Turn, Worker
from games.records import RecordError
from games.workers import hash_worker_id
from tests.sample_files import SAMPLE_JSON, SAMPLE_PKL

EZ = "ezCwNpbfDkoChK9Fm"
LAST = "MRMmAFfSnLHku2npu"  # the last game of the sample: earlier games are all valid


def run_import(path, study="S", round_index=0, system="B-FFT") -> str:
    out = StringIO()
    call_command(
        "import_games", str(path), study=study, round=round_index, system=system, stdout=out
    )
    return out.getvalue().strip()


def assert_nothing_written() -> None:
    assert Game.objects.count() == 0
    assert Turn.objects.count() == 0
    assert GameConfig.objects.count() == 0
    assert Worker.objects.count() == 0
    assert Study.objects.count() == 0
    assert Round.objects.count() == 0


@pytest.mark.parametrize("path", [SAMPLE_JSON, SAMPLE_PKL], ids=["json", "pkl"])
def test_sample_imports_24_games_once(sample_tangrams, path):
    assert run_import(path) == "imported 24 games (168 turns)"
    study = Study.objects.get(name="S")
    games = Game.objects.filter(study=study)
    assert games.count() == 24
    assert Turn.objects.filter(game__study=study).count() == 168
    assert games.filter(outcome="successful").count() == 17
    assert games.filter(outcome="unsuccessful").count() == 7
    assert set(games.values_list("status", flat=True)) == {"ended"}
    assert set(games.values_list("system__name", "round__index")) == {("B-FFT", 0)}

    assert run_import(path) == "nothing to import: all 24 games already present"
    assert Game.objects.count() == 24 and Turn.objects.count() == 168


def test_json_and_pickle_are_the_same_games(sample_tangrams):
    run_import(SAMPLE_JSON)
    assert run_import(SAMPLE_PKL) == "nothing to import: all 24 games already present"


def test_stored_game_fields(sample_tangrams):
    run_import(SAMPLE_PKL)
    game = Game.objects.select_related("config", "speaker", "listener").get(external_id=EZ)
    assert game.config.speaker_order[0] == "page5-128"
    assert game.config.listener_order[0] == "page3-168"
    assert game.config.targets == ["page5-128", "page1-36", "page2-105", "page6-122"]
    assert (game.outcome, game.end_reason) == ("successful", "successful")
    assert game.metadata["speaker_hrly"] == 12.26
    assert game.metadata["listener_hrly"] is None
    turns = list(game.turns.order_by("index"))
    assert [t.action for t in turns] == [
        "select B",
        "select H",
        "select G",
        "select J",
        "deselect J",
        "select E",
    ]
    assert turns[4].selection_before == ["page5-128", "page2-105", "page1-36", "page2-61"]
    assert turns[4].selection_after == ["page5-128", "page2-105", "page1-36"]
    assert turns[0].speaker_seconds == 19.0


def test_workers_are_stored_as_keyed_hashes_only(sample_tangrams):
    run_import(SAMPLE_JSON)
    game = Game.objects.get(external_id=EZ)
    assert game.speaker.platform == "import"
    assert game.speaker.id_hash == hash_worker_id("import", "007df91b3e539be211415c007692a712")
    assert game.speaker.encrypted_platform_id is None
    # Eight distinct speakers and one listener id ("bob") in the sample.
    assert Worker.objects.count() == 9
    hashes = "".join(Worker.objects.values_list("id_hash", flat=True))
    assert "007df91b3e539be211415c007692a712" not in hashes


def test_unknown_tangram_imports_nothing(sample_tangrams):
    from games.models import Tangram

    Tangram.objects.filter(name="page5-128").delete()
    with pytest.raises(CommandError) as caught:
        run_import(SAMPLE_JSON)
    assert str(caught.value) == (
        f"nothing imported: game {EZ}: field 'context': tangram page5-128 is not in the "
        "database (import the tangrams first)"
    )
    assert_nothing_written()


def break_last_game(sample, change) -> dict:
    change(sample[LAST])
    return sample


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda g: g["targets"].__setitem__(0, "page1-999.png"), "targets", "page1-999 is not in"),
        (lambda g: g["clicks"].__setitem__(2, "page1-999.png"), "clicks[2]", "expected a list"),
        (lambda g: g["clicks"][2].append("page1-999.png"), "clicks[2]", "page1-999 is not in"),
        (lambda g: g["clicks"][1].append(g["clicks"][1][0]), "clicks[1]", "appears twice"),
        (lambda g: g["chat"].pop(), "clicks", "8 utterances but 9 selections"),
        (lambda g: g["chat"].__setitem__(0, "x" * 301), "turns[0].utterance", "301 characters"),
        (lambda g: g["context"].pop(), "context_listener", "not the same images"),
    ],
    ids=[
        "target-outside-context",
        "selection-not-a-list",
        "selection-outside-context",
        "selection-twice",
        "chat-clicks-lengths",
        "utterance-too-long",
        "context-short",
    ],
)
def test_one_broken_record_imports_nothing(
    sample_tangrams, sample, write_json, change, field, words
):
    path = write_json(break_last_game(sample, change))
    with pytest.raises(CommandError) as caught:
        run_import(path)
    message = str(caught.value)
    assert message.startswith(f"nothing imported: game {LAST}: field '{field}': ")
    assert words in message
    assert_nothing_written()


def test_context_size_follows_the_study(sample_tangrams, sample, write_json):
    Study.objects.create(name="small", context_size=8, min_targets=3, max_targets=5)
    with pytest.raises(CommandError, match=f"game {EZ}: field 'context': 10 images; study small"):
        run_import(write_json(sample), study="small")
    assert Game.objects.count() == 0


def test_turn_limit_follows_the_study(sample_tangrams):
    Study.objects.create(name="short", turn_limit=9)
    with pytest.raises(CommandError, match=r"field 'turns': 10 turns; study short allows 9"):
        run_import(SAMPLE_JSON, study="short")
    assert Game.objects.count() == 0


def test_bad_json_imports_nothing(sample_tangrams, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(SAMPLE_JSON.read_text()[:5000])
    with pytest.raises(CommandError, match=r"^nothing imported: broken.json: not valid JSON"):
        run_import(path)
    assert_nothing_written()


def test_hostile_pickle_imports_nothing_and_never_runs(sample_tangrams, sample, tmp_path):
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    sample[LAST]["treatment"] = Hostile()
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps(sample))
    with pytest.raises(CommandError, match=r"hostile.pkl: refused to load io.open"):
        run_import(path)
    assert not marker.exists()
    assert_nothing_written()


def test_unsupported_file_type(db, tmp_path):
    path = tmp_path / "games.csv"
    path.write_text("a,b\n")
    with pytest.raises(CommandError, match="unsupported file type .csv"):
        run_import(path)


def test_same_id_with_different_content_is_an_error(sample_tangrams, sample, write_json):
    run_import(SAMPLE_JSON)
    sample[EZ]["chat"][2] = "something else"
    sample["aNewGameId0000000"] = dict(sample[LAST], _id="aNewGameId0000000")
    with pytest.raises(CommandError) as caught:
        run_import(write_json(sample))
    assert str(caught.value) == (
        f"nothing imported: game {EZ}: field 'turns[2].utterance': already in study S with "
        "different content"
    )
    assert not Game.objects.filter(external_id="aNewGameId0000000").exists()
    assert Game.objects.count() == 24


def test_same_games_under_another_round_are_an_error(sample_tangrams):
    run_import(SAMPLE_JSON)
    with pytest.raises(CommandError, match=f"game {EZ}: field 'round': already in study S"):
        run_import(SAMPLE_JSON, round_index=1)
    assert Round.objects.count() == 1


def test_new_games_beside_present_ones(sample_tangrams, sample, write_json):
    first = dict(list(sample.items())[:10])
    assert run_import(write_json(first, "first.json")) == "imported 10 games (57 turns)"
    assert run_import(write_json(sample)) == "imported 14 games (111 turns); 10 already present"
    assert Game.objects.count() == 24 and Turn.objects.count() == 168


def test_import_game_records_creates_round_and_system(sample_tangrams):
    study = Study.objects.create(name="direct")
    records = read_records(SAMPLE_JSON)
    result = import_game_records(records, study=study, round_index=2, system_name="HH")
    assert (result.created, result.skipped, result.turns_created) == (24, 0, 168)
    assert System.objects.get(round__study=study, round__index=2).name == "HH"
    again = import_game_records(records, study=study, round_index=2, system_name="HH")
    assert (again.created, again.skipped, again.turns_created) == (0, 24, 0)


def test_duplicate_game_ids_in_one_import(sample_tangrams):
    study = Study.objects.create(name="dup")
    records = read_records(SAMPLE_JSON)
    with pytest.raises(RecordError, match=f"game {EZ}: field 'game_id': appears twice"):
        import_game_records(records + records[:1], study=study, round_index=0, system_name="X")
    assert Game.objects.count() == 0


def test_nan_in_a_json_file_means_missing(sample_tangrams, tmp_path):
    text = SAMPLE_JSON.read_text()
    first_timing = '"secUntilSend": 19,'
    assert first_timing in text
    path = tmp_path / "nan.json"
    path.write_text(text.replace(first_timing, '"secUntilSend": NaN,', 1))
    run_import(path)
    assert Turn.objects.get(game__external_id=EZ, index=0).speaker_seconds is None


@pytest.mark.parametrize("model", [GameConfig, Game, Turn], ids=lambda m: m.__name__)
def test_fields_an_import_leaves_out_get_their_model_defaults(sample_tangrams, model):
    """The COPY path fills every column the importer does not know about like the ORM would."""
    from games.importing import _create_games

    study = Study.objects.create(name="defaults")
    round_ = Round.objects.create(study=study, index=0)
    system = System.objects.create(round=round_, name="B-FFT")
    _create_games(read_records(SAMPLE_JSON)[:2], study, round_, system)
    stored = model.objects.order_by("pk").first()
    set_by_import = {
        GameConfig: {"study_id", "speaker_order", "listener_order", "targets"},
        Game: {
            "study_id",
            "round_id",
            "system_id",
            "config_id",
            "external_id",
            "speaker_id",
            "listener_id",
            "status",
            "outcome",
            "end_reason",
            "started_at",
            "ended_at",
            "metadata",
        },
        Turn: {
            "game_id",
            "index",
            "utterance",
            "selection_before",
            "selection_after",
            "action",
            "action_reason",
            "action_probability",
            "speaker_seconds",
            "listener_seconds",
            "started_at",
            "utterance_at",
            "submitted_at",
        },
    }[model]
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in set_by_import:
            continue
        value = getattr(stored, field.attname)
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            assert value is not None, field.name
        else:
            assert value == field.get_default(), field.name


def test_missing_file_and_bad_round(sample_tangrams, tmp_path):
    with pytest.raises(CommandError, match=r"nothing imported: absent.json: cannot read the file"):
        run_import(tmp_path / "absent.json")
    with pytest.raises(CommandError, match=r"field 'round': round must be 0 or more, got -1"):
        run_import(SAMPLE_JSON, round_index=-1)
    assert_nothing_written()


def test_an_empty_export_imports_nothing(db, write_json):
    assert run_import(write_json({})) == "nothing to import: no games in the input"
    assert Game.objects.count() == 0
