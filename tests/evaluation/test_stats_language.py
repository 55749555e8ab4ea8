"""Language measures: tokens, vocabulary and phrase counts, by hand and as properties."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.stats import language
from evaluation.stats.conventions import ALPHANUMERIC


def test_vocabulary_lowercases_and_strips_punctuation():
    utterances = ["Ok. Pick the BIRD!", "ok, the bird's wing", "  ", "-- ..."]
    assert language.vocabulary(utterances) == {"ok", "pick", "the", "bird", "bird's", "wing"}
    assert language.vocabulary_size(utterances) == 6
    assert language.utterance_lengths(utterances).tolist() == [4, 4, 0, 2]


def test_reset_and_try_again_phrases():
    assert len(language.RESET_PHRASES) == 15
    assert "unselect everything" in language.RESET_PHRASES
    texts = [
        "Deselect ALL and start over",  # deselect all, start over
        "let's start all over, reset",  # all over, reset
        "try again: the other one, try again",  # 3 try-again phrases
        "restarted from scratch",  # restart, from scratch
    ]
    assert language.phrase_counts(texts, language.RESET_PHRASES).tolist() == [2, 2, 0, 2]
    assert language.phrase_counts(texts, language.TRY_AGAIN_PHRASES).tolist() == [0, 0, 3, 0]
    assert language.per_100_utterances(3, 4) == 75.0


words = st.sampled_from(["try", "again", "reset", "all", "over", "the", "other", "one", "İ", "X"])
utterance = st.lists(words, max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(utterance, st.integers(0, 3)), max_size=20))
def test_grouped_phrase_counts_equal_per_utterance_counts(data):
    texts = [t for t, _ in data]
    group = np.array([g for _, g in data], dtype=np.intp)
    for phrases in (language.RESET_PHRASES, language.TRY_AGAIN_PHRASES):
        expected = np.zeros(4, dtype=np.int64)
        np.add.at(expected, group, language.phrase_counts(texts, phrases))
        assert language.phrase_counts_by_group(texts, group, 4, phrases).tolist() == (
            expected.tolist()
        )


@settings(max_examples=100, deadline=None)
@given(st.lists(utterance, max_size=20))
def test_vocabulary_equals_per_utterance_tokens(texts):
    expected = set()
    for text in texts:
        expected.update(language.word_tokens(text))
    assert language.vocabulary(texts) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="aZ9 .'-İé\n", max_size=12), max_size=12))
def test_alphanumeric_vocabulary_and_lengths_equal_per_utterance_tokens(texts):
    expected = [re.findall(r"[a-z0-9]+", text.lower()) for text in texts]
    assert language.vocabulary(texts, ALPHANUMERIC) == {t for tokens in expected for t in tokens}
    assert language.utterance_lengths(texts, ALPHANUMERIC).tolist() == [len(t) for t in expected]
