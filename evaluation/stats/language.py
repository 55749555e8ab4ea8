"""Language of speaker utterances (docs/metrics.md, "Language"; paper appendix B.4).

Two tokenizers (``tokens``, see ``evaluation.stats.conventions``):

- ``whitespace`` (the platform's): utterance length counts whitespace-separated words; the
  vocabulary is the set of distinct lower-cased words with surrounding punctuation stripped
  (``"ok."`` and ``"OK"`` are one word);
- ``alphanumeric`` (the paper's): tokens are ``re.findall(r"[a-z0-9]+", text.lower())`` for both
  (``"that's"`` is ``that`` and ``s``; other characters only separate tokens).

Phrases are counted as lower-case substrings, each phrase separately (non-overlapping
occurrences of that phrase), under either tokenizer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

import numpy as np

from .conventions import ALPHANUMERIC, TOKENIZERS, WHITESPACE

RESET_PHRASES: tuple[str, ...] = (
    "reset",
    "restart",
    "from scratch",
    "all over",
    "start over",
    *(
        f"{verb} {what}"
        for verb in ("deselect", "remove", "clear", "unselect", "drop")
        for what in ("everything", "all")
    ),
)
TRY_AGAIN_PHRASES: tuple[str, ...] = ("try again", "try one more time", "the other one")

_PUNCTUATION = string.punctuation + "“”‘’…–—"
_ALPHANUMERIC = re.compile(r"[a-z0-9]+")


def _check(tokens: str) -> None:
    if tokens not in TOKENIZERS:
        raise ValueError(f"tokens must be one of {TOKENIZERS}, got {tokens!r}")


def alphanumeric_tokens(utterance: str) -> list[str]:
    """The paper's tokens: runs of ``[a-z0-9]`` in the lower-cased utterance."""
    return _ALPHANUMERIC.findall(utterance.lower())


def utterance_lengths(utterances: Sequence[str], tokens: str = WHITESPACE) -> np.ndarray:
    """Tokens per utterance: whitespace-separated words, or alphanumeric tokens."""
    _check(tokens)
    if tokens == ALPHANUMERIC:
        counts = (len(alphanumeric_tokens(u)) for u in utterances)
    else:
        counts = (len(u.split()) for u in utterances)
    return np.fromiter(counts, dtype=np.int64, count=len(utterances))


def mean_utterance_length(utterances: Sequence[str]) -> float:
    lengths = utterance_lengths(utterances)
    return float(lengths.mean()) if lengths.size else float("nan")


def word_tokens(utterance: str) -> list[str]:
    """Lower-cased word tokens of one utterance (see the module docstring)."""
    tokens = (word.strip(_PUNCTUATION) for word in utterance.lower().split())
    return [token for token in tokens if token]


def vocabulary(utterances: Iterable[str], tokens: str = WHITESPACE) -> set[str]:
    """Distinct tokens of all utterances (``word_tokens`` or ``alphanumeric_tokens``).

    Whitespace words are deduplicated before stripping: one pass over the text in C.
    """
    _check(tokens)
    text = " ".join(utterances).lower()
    if tokens == ALPHANUMERIC:
        return set(_ALPHANUMERIC.findall(text))
    stripped = (word.strip(_PUNCTUATION) for word in set(text.split()))
    return {word for word in stripped if word}


def vocabulary_size(utterances: Iterable[str], tokens: str = WHITESPACE) -> int:
    return len(vocabulary(utterances, tokens))


def phrase_count(text: str, phrases: Sequence[str]) -> int:
    """Occurrences of ``phrases`` in ``text`` (lower-case substrings, summed over phrases)."""
    lowered = text.lower()
    return sum(lowered.count(phrase) for phrase in phrases)


def phrase_counts(utterances: Sequence[str], phrases: Sequence[str]) -> np.ndarray:
    """Per utterance: occurrences of ``phrases``."""
    return np.fromiter(
        (phrase_count(u, phrases) for u in utterances), dtype=np.int64, count=len(utterances)
    )


def phrase_counts_by_group(
    utterances: Sequence[str], group: np.ndarray, groups: int, phrases: Sequence[str]
) -> np.ndarray:
    """Occurrences of ``phrases`` summed per group of utterances (e.g. per game).

    Same counts as ``phrase_counts`` summed by group, but found with one scan of the joined
    text per phrase, so the cost grows with the text and the occurrences, not the utterances.
    """
    group = np.asarray(group, dtype=np.intp)
    totals = np.zeros(groups, dtype=np.int64)
    if not len(utterances):
        return totals
    lowered = [u.lower() for u in utterances]
    text = "\n".join(lowered)
    starts = np.cumsum([0] + [len(u) + 1 for u in lowered[:-1]])
    found: list[int] = []
    for phrase in phrases:
        position = text.find(phrase)
        while position != -1:
            found.append(position)
            position = text.find(phrase, position + len(phrase))
    if found:
        owner = np.searchsorted(starts, np.asarray(found), side="right") - 1
        np.add.at(totals, group[owner], 1)
    return totals


def per_100_utterances(count: float, utterances: int) -> float:
    return 100.0 * count / utterances if utterances else float("nan")
