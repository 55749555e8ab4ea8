"""Which labels a system trains with across rounds, and the one readiness check the round board
and the launch share (models_svc/training/labels.py)."""

from __future__ import annotations

import pytest

from evaluation.board.selectors import round_board
from games.models import FeedbackLabel, Round, Study, System
from models_svc.lexicon import VERSION
from models_svc.services import decode_study, store_feedback_labels
from models_svc.training.labels import RoundLabels, label_readiness
from models_svc.training.manifests import build_training_manifest
from models_svc.training.runs import launch_training_run
from models_svc.training.selectors import TrainingError
from tests.factories import make_game, make_study, make_system

pytestmark = pytest.mark.django_db

PICKS = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]


def two_rounds() -> Study:
    """B-FFT in rounds 0 and 1, each with four three-turn games ("good…", "yes…": two positive
    turns for the lexicon) and one two-turn game ("no, not that one": one negative turn):
    nine decodable turns per round."""
    study = make_study("relabel")
    for index in (0, 1):
        system = make_system(study, index, "B-FFT")
        for _ in range(4):
            make_game(system, PICKS, ["pick A", "good, now B", "yes, then I"])
        make_game(system, [["page9-7"], []], ["pick A", "no, not that one"])
    return study


def board_reason(study: Study, index: int, name: str) -> str:
    round_ = Round.objects.select_related("study").get(study=study, index=index)
    board = round_board(round_, is_last=True)
    return next(t.blocked for t in board.train.targets if t.system.name == name)


def test_relabelling_a_later_round_keeps_the_earlier_rounds_labels(tmp_path):
    study = two_rounds()
    decode_study(study, decoder_spec="lexicon", kind="binary")
    before = build_training_manifest(study, 1, "B-FFT")
    assert before.summary["examples"] == 18
    assert before.summary["labels"] == {"negative": 2, "positive": 16}
    # A newer version of the decoder relabels round 1 only, calling every turn negative.
    round_one = list(
        FeedbackLabel.objects.filter(turn__game__round__index=1, decoder="lexicon")
        .order_by("turn_id")
        .values_list("turn_id", flat=True)
    )
    assert len(round_one) == 9
    store_feedback_labels(
        "lexicon", "lexicon-3", "binary", [(t, "negative", None, "") for t in round_one]
    )
    after = build_training_manifest(study, 1, "B-FFT")
    assert after.summary["examples"] == 18
    assert after.summary["excluded"].get("no_label") is None
    assert after.summary["labels"] == {"negative": 10, "positive": 8}
    assert after.summary["decoder_versions"] == {VERSION: 9, "lexicon-3": 9}
    assert after.decoder_version == f"{VERSION}, lexicon-3"
    newest = dict(
        FeedbackLabel.objects.filter(model_version="lexicon-3").values_list("turn_id", "pk")
    )
    used = {e["turn"]: e["label_id"] for e in after.entries}
    assert all(used[turn] == pk for turn, pk in newest.items())
    assert board_reason(study, 1, "B-FFT") == ""
    readiness = label_readiness(study, 1, System.objects.get(round__index=1, name="B-FFT"))
    assert readiness.rounds == (RoundLabels(0, ("B-FFT",), 9, 9), RoundLabels(1, ("B-FFT",), 9, 9))
    assert readiness.refusal is None


def test_the_board_and_the_launch_give_the_same_reason(tmp_path):
    study = two_rounds()
    decode_study(study, decoder_spec="lexicon", kind="binary", round_index=1)
    reason = board_reason(study, 1, "B-FFT")
    assert reason == "decode round 0 first: 0 of 9 turns labelled (binary, lexicon)"
    with pytest.raises(TrainingError) as refused:
        launch_training_run(study, 1, "B-FFT", base=f"hf:{tmp_path}")
    assert refused.value.message == reason
    # One turn of round 0 labelled: still refused, by both, with the same count.
    first = FeedbackLabel.objects.filter(turn__game__round__index=1).order_by("turn_id").first()
    zero_turn = (
        System.objects.get(round__index=0, name="B-FFT")
        .games.order_by("pk")
        .first()
        .turns.get(index=0)
    )
    store_feedback_labels("lexicon", VERSION, "binary", [(zero_turn.pk, first.label, None, "")])
    reason = board_reason(study, 1, "B-FFT")
    assert reason.startswith("decode round 0 first: 1 of 9 turns labelled")
    with pytest.raises(TrainingError, match="decode round 0 first: 1 of 9 turns labelled"):
        launch_training_run(study, 1, "B-FFT", base=f"hf:{tmp_path}")
