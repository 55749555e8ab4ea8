"""Parsing the original study's export and the JSONL export into records (pure: no database)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from games.jsonl_records import records_from_jsonl
from games.original_export import game_from_study_record, records_from_study_export
from games.plain import plain
from games.records import GameRecord, RecordError, TurnRecord

EZ = "ezCwNpbfDkoChK9Fm"
VE = "veTQdKhtY5RAdz2XM"
ZB = "Zbe6oLwCyrkYBnFYy"


def by_id(records: list[GameRecord]) -> dict[str, GameRecord]:
    return {record.game_id: record for record in records}


def test_sample_parses_to_24_games_168_turns_17_successes(sample):
    records = records_from_study_export(sample)
    assert len(records) == 24
    assert sum(len(record.turns) for record in records) == 168
    assert [r.outcome for r in records].count("successful") == 17
    assert [r.outcome for r in records].count("unsuccessful") == 7


def test_orders_targets_and_selections_lose_their_suffixes(sample):
    record = by_id(records_from_study_export(sample))[EZ]
    assert record.speaker_order[:3] == ("page5-128", "page1-6", "page6-122")
    assert record.listener_order[:3] == ("page3-168", "page5-128", "page1-6")
    assert record.targets == ("page5-128", "page1-36", "page2-105", "page6-122")
    # clicks[1] is ['page1-36.png', 'page5-128.png']; kept in listener order (B before H).
    assert record.turns[1].selection_before == ("page5-128",)
    assert record.turns[1].selection_after == ("page5-128", "page1-36")


def test_derived_actions_use_listener_letters(sample):
    # Listener order of ezCw...: A page3-168, B page5-128, C page1-6, D page7-121, E page6-122,
    # F page3-167, G page2-105, H page1-36, I page8-246, J page2-61.
    ez = by_id(records_from_study_export(sample))[EZ]
    assert [turn.action for turn in ez.turns] == [
        "select B",
        "select H",
        "select G",
        "select J",
        "deselect J",
        "select E",
    ]
    # veTQ... turn 3 swaps page1-125 (J) for page2-61 (A), turn 4 page2-61 (A) for page6-234 (B).
    ve = by_id(records_from_study_export(sample))[VE]
    assert ve.turns[3].action == "deselect J select A"
    assert ve.turns[4].action == "deselect A select B"


def test_empty_action_is_kept_empty(sample):
    # Zbe6... turn 3: clicks[2] == clicks[3] (the listener submitted without a change).
    turn = by_id(records_from_study_export(sample))[ZB].turns[3]
    assert turn.action == ""
    assert turn.action_reason == ""
    assert turn.selection_after == turn.selection_before
    assert set(turn.selection_after) == {"page5-1", "page5-89", "page6-22"}


def test_timings_utterances_and_worker_ids(sample):
    record = by_id(records_from_study_export(sample))[EZ]
    first = record.turns[0]
    assert first.utterance == "pick the ice skater"
    assert first.speaker_seconds == 19.0
    assert first.listener_seconds == pytest.approx(4.464)
    assert first.action_probability is None
    assert record.speaker == "007df91b3e539be211415c007692a712"
    assert record.listener == "bob"
    assert record.created_at == datetime(2024, 9, 12, 19, 0, 3, tzinfo=UTC)
    assert record.end_reason == "successful"


def test_metadata_keeps_the_other_fields_but_not_addresses(sample):
    metadata = by_id(records_from_study_export(sample))[EZ].metadata
    assert metadata["treatment"] == "sample_bot_treatment"
    assert metadata["speaker_hrly"] == 12.26
    assert metadata["l lobby"] is None
    assert "s ip" not in metadata and "l ip" not in metadata
    assert "chat" not in metadata and "clicks" not in metadata
    json.dumps(metadata, allow_nan=False)


@pytest.mark.parametrize(
    ("end", "outcome"), [("speaker idled", "idle"), ("listener idled", "idle")]
)
def test_idle_endings_are_kept(sample, end, outcome):
    raw = sample[EZ]
    raw["end"] = end
    record = game_from_study_record(EZ, raw)
    assert (record.outcome, record.end_reason) == (outcome, end)
    assert len(record.turns) == 6


def test_listener_idling_leaves_the_last_utterance_unanswered(sample):
    raw = sample[EZ]
    raw["end"] = "listener idled"
    raw["clicks"] = raw["clicks"][:3]
    raw["chat"] = raw["chat"][:4]
    raw["turnList"] = raw["turnList"][:4]
    record = game_from_study_record(EZ, raw)
    assert len(record.turns) == 4
    last = record.turns[-1]
    assert last.selection_after is None
    assert last.action == ""
    assert last.action_reason == "listener_idled"
    assert last.selection_before == ("page5-128", "page2-105", "page1-36")


def test_nan_means_missing(sample):
    raw = sample[EZ]
    raw["turnList"][2]["secUntilSend"] = float("nan")
    raw["speaker_hrly"] = float("nan")
    record = game_from_study_record(EZ, raw)
    assert record.turns[2].speaker_seconds is None
    assert record.metadata["speaker_hrly"] is None


def expect_error(raw_sample: dict, game_id: str, field: str) -> str:
    with pytest.raises(RecordError) as caught:
        records_from_study_export(raw_sample)
    assert caught.value.game_id == game_id
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"game {game_id}: field '{field}': ")
    return message


def test_target_outside_context(sample):
    sample[EZ]["targets"][1] = "page1-999.png"
    message = expect_error(sample, EZ, "targets")
    assert message == f"game {EZ}: field 'targets': page1-999 is not in the context"


def test_listener_order_with_other_images(sample):
    sample[EZ]["context_listener"][0] = "page1-999.png"
    expect_error(sample, EZ, "context_listener")


def test_context_naming_an_image_twice(sample):
    sample[EZ]["context"][1] = sample[EZ]["context"][0]
    assert "page5-128 appears twice" in expect_error(sample, EZ, "context")


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("page5-128.png", "expected a list of image names, got str"),
        (["page5-128.png", "page5-128.png"], "page5-128 appears twice"),
        (["page5-128.png", 7], "7 is not an image name"),
        (["page9-999.png"], "page9-999 is not in the context"),
    ],
)
def test_malformed_selection(sample, bad, words):
    sample[EZ]["clicks"][2] = bad
    assert words in expect_error(sample, EZ, "clicks[2]")


def test_chat_and_clicks_of_different_lengths(sample):
    sample[EZ]["chat"].append("one more")
    assert "7 utterances but 6 selections" in expect_error(sample, EZ, "clicks")


def test_unknown_ending(sample):
    sample[EZ]["end"] = "aborted"
    expect_error(sample, EZ, "end")


def test_success_must_end_on_the_targets(sample):
    sample[EZ]["clicks"][-1] = sample[EZ]["clicks"][-2]
    expect_error(sample, EZ, "outcome")


def test_timing_that_is_not_a_number(sample):
    sample[EZ]["turnList"][1]["secUntilSend"] = "soon"
    expect_error(sample, EZ, "turnList[1].secUntilSend")


def test_id_differing_from_key(sample):
    sample[EZ]["_id"] = "other"
    expect_error(sample, EZ, "_id")


def test_missing_field(sample):
    del sample[EZ]["targets"]
    expect_error(sample, EZ, "targets")


def test_not_a_dict_of_games():
    with pytest.raises(RecordError, match="expected a dict of game records"):
        records_from_study_export([1, 2])


def make_game(**changes) -> GameRecord:
    values = {
        "game_id": "g1",
        "speaker_order": ("t0", "t1", "t2", "t3"),
        "listener_order": ("t3", "t2", "t1", "t0"),
        "targets": ("t0", "t1"),
        "outcome": "successful",
        "end_reason": "",
        "turns": (
            TurnRecord("the first", (), ("t0",), "select D"),
            TurnRecord("the second", ("t0",), ("t0", "t1"), "select C"),
        ),
    }
    values.update(changes)
    return GameRecord(**values)


def test_records_put_selections_in_listener_order():
    record = make_game()
    assert record.turns[1].selection_after == ("t1", "t0")


def test_an_action_that_does_not_match_the_selections_is_refused():
    turns = (
        TurnRecord("a", (), ("t0",), "select A"),
        TurnRecord("b", ("t0",), ("t0", "t1"), "select C"),
    )
    with pytest.raises(RecordError) as caught:
        make_game(turns=turns)
    assert caught.value.field == "turns[0].action"
    assert "'select D' does" in str(caught.value)


def test_selections_must_chain_from_turn_to_turn():
    turns = (
        TurnRecord("a", (), ("t0",), "select D"),
        TurnRecord("b", ("t1",), ("t0", "t1"), "select D"),
    )
    with pytest.raises(RecordError) as caught:
        make_game(turns=turns)
    assert caught.value.field == "turns[1].selection_before"


def test_only_the_last_turn_of_an_idle_game_may_lack_an_answer():
    turns = (TurnRecord("a", (), None), TurnRecord("b", (), ("t0",), "select D"))
    with pytest.raises(RecordError) as caught:
        make_game(turns=turns, outcome="unsuccessful")
    assert caught.value.field == "turns[0].selection_after"


def test_probability_outside_zero_one():
    turns = (TurnRecord("a", (), ("t0", "t1"), "select C D", action_probability=1.5),)
    with pytest.raises(RecordError) as caught:
        make_game(turns=turns)
    assert caught.value.field == "turns[0].action_probability"


def test_metadata_must_be_json_safe():
    with pytest.raises(RecordError) as caught:
        make_game(metadata={"x": math.nan})
    assert caught.value.field == "metadata"


def test_hashed_worker_ids_must_look_like_hashes():
    with pytest.raises(RecordError) as caught:
        make_game(speaker="alice", ids_are_hashes=True)
    assert caught.value.field == "speaker"


def test_jsonl_errors_name_the_line():
    good = {
        "game_id": "g1",
        "context": ["t0", "t1"],
        "listener_order": ["t1", "t0"],
        "targets": ["t0"],
        "outcome": "successful",
        "turns": [
            {
                "utterance": "x",
                "selection_before": [],
                "selection_after": ["t0"],
                "action": "select B",
            }
        ],
    }
    assert records_from_jsonl([json.dumps(good), ""])[0].turns[0].action == "select B"
    with pytest.raises(RecordError, match=r"^line 2: not valid JSON"):
        records_from_jsonl([json.dumps(good), '{"game_id": "g2", '])
    bad = dict(good, game_id="g3", targets=["t9"])
    with pytest.raises(RecordError, match=r"^line 1: game g3: field 'targets': t9 is not in"):
        records_from_jsonl([json.dumps(bad)])


def test_plain_converts_numpy_and_nan():
    import numpy as np

    value = plain(
        {
            "a": np.float64(1.5),
            "b": np.int64(3),
            "c": [np.nan, np.bool_(True)],
            "d": np.array([1, 2]),
            "e": (np.str_("x"),),
        }
    )
    assert value == {"a": 1.5, "b": 3, "c": [None, True], "d": [1, 2], "e": ["x"]}
    assert type(value["a"]) is float and type(value["b"]) is int
    assert type(value["c"][1]) is bool and type(value["e"][0]) is str
