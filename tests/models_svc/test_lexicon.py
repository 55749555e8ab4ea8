"""The lexicon decoder on windows written for this test (labels decided by hand), and its quality
on seeded synthetic games against the outcome-based proxy truth."""

from __future__ import annotations

import pytest

from models_svc.interfaces import LABEL_UNPARSEABLE, FeedbackContext
from models_svc.lexicon import VERSION, LexiconDecoder, decide, normalize, typo_variants
from tests.feedback_games import generated_windows, quality

FRESH = "pick the bird with wings"

# previous action, utterance, action, follow-up, binary, ternary
CUES = [
    ("yes, pick the house with chimney", "positive", "positive"),
    ("Correct. Now select the rabbit facing right", "positive", "positive"),
    ("great!", "positive", "positive"),
    ("okay", "positive", "positive"),
    ("no that is a bird, try again", "negative", "negative"),
    ("Wrong, undo what you selected", "negative", "negative"),
    ("that's not right", "negative", "negative"),
    ("deselect the last one", "negative", "negative"),
    ("don't pick the boat", "negative", "negative"),
    ("start over please", "negative", "negative"),
    ("good but deselect the bird", "negative", "neutral"),
    ("almost there", "negative", "neutral"),
    ("not quite", "negative", "neutral"),
    ("only one is correct", "negative", "neutral"),
    ("yes but also the fish", "positive", "positive"),
    ("good, now also the fish", "positive", "positive"),
    ("NO! Wrong one", "negative", "negative"),
    ("Yes. Now The Swan", "positive", "positive"),
]
WINDOWS = {
    "moving on: a new description": (None, FRESH, "select B", "the Loch Ness monster"),
    "moving on: a new request": (None, FRESH, "select B", "select the spade"),
    "moving on: connector, same head": (
        "select A",
        "now the tall lady with a hat",
        "select C",
        "next the lady waving",
    ),
    "moving on: connector only": (None, FRESH, "select B", "Next!"),
    "moving on: after a plain undo": ("select A", "undo that", "deselect A", "the swan"),
    "moving on: after a fixed pick": (
        "select A",
        "no, the swan",
        "deselect A select B",
        "now a fish",
    ),
    "rest of a request": (None, "the bird and the fish", "select A", "the fish"),
    "rest: the other one": (None, "the bird and the fish", "select A", "now the other one"),
    "approval then earlier pick": (
        None,
        "the swan",
        "select B",
        "Good. Deselect the choice you made when I said the Loch Ness monster",
    ),
    "earlier pick, no approval": (
        None,
        "the swan",
        "select B",
        "one of the others is wrong, remove it",
    ),
    "typo in an approval": (None, "the swan", "select B", "corect, now the fish"),
    "elongated approval": (None, "the swan", "select B", "yesss"),
}
POSITIVE_WINDOWS = list(WINDOWS.values())
NEGATIVE_WINDOWS = {
    "rephrase: repeat": (None, "the swan with a long neck", "select C", "the swan!!"),
    "rephrase: elaborate": (None, "the bird", "select C", "bird with its wings spread"),
    "rephrase: typo": (None, "the giraffe", "select D", "the girafe"),
    "rephrase: request again": (None, "a tall house with a chimney", "select D", "Select house"),
    "rephrase after a connector": (None, "the swan", "select B", "now the swan"),
    "rephrase: both things again": (None, "the bird and the fish", "select A", "bird and fish!"),
    "rest, but both were selected": (None, "the bird and the fish", "select A B", "the fish"),
    "correction": (None, "the boat", "select A", "no, not that one"),
    "try again": (None, "the boat", "select A", "try again"),
    "the other one": (None, "the boat", "select A", "the other one"),
    "typo in a correction": (None, "the boat", "select A", "Wrnog one"),
    "elongated correction": (None, "the boat", "select A", "NOOO"),
    "plain negation of an earlier pick": (None, "the swan", "select B", "no, the one from before"),
}
# Windows the rules cannot read: binary leans negative, ternary neutral.
UNREAD_WINDOWS = {
    "empty action, then approval": (None, "the swan", "", "great. now the fish"),
    "undo asked, nothing deselected": ("select A", "deselect the bird", "select C", "the fish"),
    "correction not carried out": ("select A", "no, the swan", "select B", "now the fish"),
    "silence after a retry": ("select A", "try again", "deselect A select B", "the fish"),
    "silence after a redone pick": ("select A", "the swan", "deselect A select B", "the fish"),
    "shares a word with the request": (None, "select the letter k", "select B", "the letter z"),
    "no cue, no description": (None, "the swan", "select B", "hmm"),
}


def window(previous: str | None, utterance: str, action: str, follow_up: str) -> FeedbackContext:
    return FeedbackContext(utterance, action, follow_up, previous)


@pytest.mark.parametrize(("follow_up", "binary", "ternary"), CUES)
def test_cues_after_a_fresh_request(follow_up, binary, ternary):
    context = window(None, FRESH, "select B", follow_up)
    assert decide(context, "binary").label == binary
    assert decide(context, "ternary").label == ternary


@pytest.mark.parametrize("parts", POSITIVE_WINDOWS, ids=list(WINDOWS))
def test_positive_windows(parts):
    assert decide(window(*parts), "binary").label == "positive"
    assert decide(window(*parts), "ternary").label == "positive"


@pytest.mark.parametrize("parts", list(NEGATIVE_WINDOWS.values()), ids=list(NEGATIVE_WINDOWS))
def test_negative_windows(parts):
    assert decide(window(*parts), "binary").label == "negative"
    assert decide(window(*parts), "ternary").label == "negative"


@pytest.mark.parametrize("parts", list(UNREAD_WINDOWS.values()), ids=list(UNREAD_WINDOWS))
def test_windows_without_evidence_lean_negative(parts):
    assert decide(window(*parts), "binary").label == "negative"
    assert decide(window(*parts), "ternary").label == "neutral"


def test_empty_action_is_never_approved():
    assert decide(window(None, "the swan", "", "perfect"), "binary").label == "negative"
    assert decide(window(None, "the swan", "", "the swan"), "ternary").label == "negative"


@pytest.mark.parametrize("follow_up", ["", "   ", "\n\t"])
def test_an_empty_follow_up_gives_no_label(follow_up):
    for kind in ("binary", "ternary"):
        result = decide(window(None, "the swan", "select A", follow_up), kind)
        assert (result.label, result.score) == (LABEL_UNPARSEABLE, None)


def test_scores_are_evidence_shares():
    assert decide(window(None, FRESH, "select B", "yes, good"), "binary").score == 1.0
    assert decide(window(None, FRESH, "select B", "hmm"), "binary").score == 0.5
    assert decide(window(None, FRESH, "select B", "hmm"), "ternary").score == pytest.approx(1 / 3)
    # "good" (head, positive) then "deselect" (clause after but): negative 1, partial 1.
    assert decide(window(None, FRESH, "select B", "good but deselect it"), "ternary").score == 0.5
    # A connector (a half) against a repeat of the request (one).
    repeat = window(None, "the swan", "select B", "now the swan")
    assert decide(repeat, "binary").score == pytest.approx(2 / 3)


def test_normalize_forgives_case_quotes_elongation_and_cue_typos():
    assert normalize("NOOO, Don\u2019t") == "no, don't"
    assert normalize("goood corect") == "good correct"
    assert normalize("a cone and a knot") == "a cone and a knot"
    assert "wrnog" in typo_variants("wrong") and "wron" in typo_variants("wrong")
    assert "nt" not in typo_variants("not")


def test_version_names_the_rules():
    assert VERSION == "lexicon-2"
    assert LexiconDecoder.version == VERSION and LexiconDecoder.name == "lexicon"


def test_decoder_reads_the_window_and_keeps_order():
    decoder = LexiconDecoder()
    contexts = [
        window(None, "the swan", "select A", "the swan again please"),
        window(None, "the swan", "select A", "the fish"),
        window("select A", "no", "deselect A", "no, the other one"),
    ]
    assert [r.label for r in decoder.decode(contexts, "binary")] == [
        "negative",
        "positive",
        "negative",
    ]
    assert decoder.decode([], "ternary") == []
    with pytest.raises(ValueError, match="binary or ternary"):
        decoder.decode(contexts, "numeric")


def test_quality_on_generated_games():
    windows = generated_windows(300, seed=0)
    q = quality(LexiconDecoder(), windows)
    assert q.windows > 1000 and 0.3 < q.good / q.windows < 0.7
    assert q.precision >= 0.97
    assert q.recall >= 0.85


def test_generated_games_are_seeded():
    assert generated_windows(5, seed=3) == generated_windows(5, seed=3)
    assert generated_windows(5, seed=3) != generated_windows(5, seed=4)
