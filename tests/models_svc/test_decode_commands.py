"""decode_feedback and export_feedback with the lexicon decoder (no torch)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from games.models import FeedbackLabel
from models_svc.lexicon import VERSION
from tests.factories import make_game, make_study, make_system

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    study = make_study("s1")
    round0 = make_system(study, 0, "B-FFT")
    round1 = make_system(study, 1, "B-FFT")
    make_game(
        round0,
        [["page9-9"], ["page9-8"], ["page9-8", "page9-7"]],
        ["the bird", "no, the other bird", "yes, now the house"],
        external_id="gA",
    )
    make_game(round1, [["page9-1"], []], ["a cat", "wrong, undo that"], external_id="gB")
    return study


def test_decode_labels_every_turn_with_a_follow_up(study, capsys):
    call_command("decode_feedback", "--study", "s1", "--decoder", "lexicon", "--kind", "binary")
    labels = {
        (label.turn.game.external_id, label.turn.index): label.label
        for label in FeedbackLabel.objects.select_related("turn__game")
    }
    # turn t is labelled from utterance t+1; the last turn of each game gets none.
    assert labels == {("gA", 0): "negative", ("gA", 1): "positive", ("gB", 0): "negative"}
    assert set(FeedbackLabel.objects.values_list("decoder", "model_version", "kind")) == {
        ("lexicon", VERSION, "binary")
    }
    out = capsys.readouterr()
    assert "3 turns with a follow-up, 3 labelled" in out.out
    assert "decoded 3/3 turns" in out.err


def test_rerun_does_not_duplicate_and_kinds_are_separate(study, capsys):
    call_command("decode_feedback", "--study", "s1", "--kind", "binary")
    call_command("decode_feedback", "--study", "s1", "--kind", "binary")
    assert FeedbackLabel.objects.count() == 3
    assert "0 labelled (none), 3 already labelled" in capsys.readouterr().out
    FeedbackLabel.objects.filter(turn__index=0, turn__game__external_id="gA").update(
        label="positive", score=None, raw_output="edited"
    )
    call_command("decode_feedback", "--study", "s1", "--kind", "binary")
    assert (
        FeedbackLabel.objects.get(turn__index=0, turn__game__external_id="gA").label == "positive"
    )
    call_command("decode_feedback", "--study", "s1", "--kind", "binary", "--force")
    assert FeedbackLabel.objects.count() == 3
    relabelled = FeedbackLabel.objects.get(turn__index=0, turn__game__external_id="gA")
    assert (relabelled.label, relabelled.score, relabelled.raw_output) == ("negative", 1.0, "")
    call_command("decode_feedback", "--study", "s1", "--kind", "ternary", "--round", "1")
    assert FeedbackLabel.objects.filter(kind="ternary").count() == 1


def test_round_and_system_filters(study):
    call_command("decode_feedback", "--study", "s1", "--round", "0", "--system", "B-FFT")
    assert FeedbackLabel.objects.count() == 2
    with pytest.raises(CommandError, match="no round 7"):
        call_command("decode_feedback", "--study", "s1", "--round", "7")
    with pytest.raises(CommandError, match="no system 'T-RL'"):
        call_command("decode_feedback", "--study", "s1", "--system", "T-RL")


def test_bad_study_and_decoder_are_clear_errors(study):
    with pytest.raises(CommandError, match="no study named 'nope'"):
        call_command("decode_feedback", "--study", "nope")
    with pytest.raises(CommandError, match="checkpoint path /no/such/dir does not exist"):
        call_command("decode_feedback", "--study", "s1", "--decoder", "hf:/no/such/dir")
    with pytest.raises(CommandError, match="decoder spec 'gpt' is not one of"):
        call_command("decode_feedback", "--study", "s1", "--decoder", "gpt")
    assert not FeedbackLabel.objects.exists()


def test_export_jsonl(study, tmp_path):
    call_command("decode_feedback", "--study", "s1", "--kind", "ternary")
    out = tmp_path / "feedback.jsonl"
    call_command("export_feedback", "--study", "s1", "-o", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "game_id": "gA",
            "turn": 0,
            "label": "negative",
            "decoder": "lexicon",
            "kind": "ternary",
            "score": 1.0,
        },
        {
            "game_id": "gA",
            "turn": 1,
            "label": "positive",
            "decoder": "lexicon",
            "kind": "ternary",
            "score": 1.0,
        },
        {
            "game_id": "gB",
            "turn": 0,
            "label": "negative",
            "decoder": "lexicon",
            "kind": "ternary",
            "score": 1.0,
        },
    ]
