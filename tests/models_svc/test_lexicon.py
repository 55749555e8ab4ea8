"""The lexicon decoder on utterances written for this test (labels decided by hand)."""

from __future__ import annotations

import pytest

from models_svc.interfaces import FeedbackContext
from models_svc.lexicon import LexiconDecoder, decide

CASES = [
    # utterance, binary, ternary
    ("yes, pick the house with chimney", "positive", "positive"),
    ("Correct. Now select the rabbit facing right", "positive", "positive"),
    ("great!", "positive", "positive"),
    ("okay", "positive", "positive"),
    ("now the man with a hat", "positive", "positive"),
    ("next: the swan", "positive", "positive"),
    ("no that is a bird, try again", "negative", "negative"),
    ("Wrong, undo what you selected", "negative", "negative"),
    ("that's not right", "negative", "negative"),
    ("deselect the last one", "negative", "negative"),
    ("don't pick the boat", "negative", "negative"),
    ("start over please", "negative", "negative"),
    ("horned roof", "negative", "neutral"),
    ("the one on the right", "negative", "neutral"),
    ("good but deselect the bird", "negative", "neutral"),
    ("almost there", "negative", "neutral"),
    ("not quite", "negative", "neutral"),
    ("yes but also the fish", "positive", "positive"),
    ("NO! Wrong one", "negative", "negative"),
    ("Yes. Now The Swan", "positive", "positive"),
]


@pytest.mark.parametrize(("utterance", "binary", "ternary"), CASES)
def test_lexicon_labels(utterance, binary, ternary):
    assert decide(utterance, "binary").label == binary
    assert decide(utterance, "ternary").label == ternary


def test_scores_are_evidence_shares():
    assert decide("yes, good", "binary").score == 1.0
    assert decide("horned roof", "binary").score == 0.5
    assert decide("horned roof", "ternary").score == pytest.approx(1 / 3)
    # "good" (head, positive) then "deselect" (clause after but): negative 1, partial 1.
    assert decide("good but deselect the bird", "ternary").score == 0.5


def test_decoder_reads_only_the_follow_up_and_keeps_order():
    decoder = LexiconDecoder()
    contexts = [
        FeedbackContext("no", "select A", "yes", "deselect B"),
        FeedbackContext("yes", "select B", "no, the other one"),
    ]
    assert [r.label for r in decoder.decode(contexts, "binary")] == ["positive", "negative"]
    assert decoder.decode([], "ternary") == []
    with pytest.raises(ValueError, match="binary or ternary"):
        decoder.decode(contexts, "numeric")
