"""Language of speaker utterances (DESIGN.md "Metrics", paper appendix B.4).

Utterance length counts whitespace-separated words. The vocabulary is the set of distinct
lower-cased word tokens: whitespace-separated words with surrounding punctuation stripped
(``"ok."`` and ``"OK"`` are one word). Phrases are counted as lower-case substrings, each phrase
separately (non-overlapping occurrences of that phrase).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

import numpy as np

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


def utterance_lengths(utterances: Sequence[str]) -> np.ndarray:
    """Words per utterance (whitespace split)."""
    return np.fromiter((len(u.split()) for u in utterances), dtype=np.int64, count=len(utterances))


def mean_utterance_length(utterances: Sequence[str]) -> float:
    lengths = utterance_lengths(utterances)
    return float(lengths.mean()) if lengths.size else float("nan")


def word_tokens(utterance: str) -> list[str]:
    """Lower-cased word tokens of one utterance (see the module docstring)."""
    tokens = (word.strip(_PUNCTUATION) for word in utterance.lower().split())
    return [token for token in tokens if token]


def vocabulary(utterances: Iterable[str]) -> set[str]:
    """Distinct word tokens (deduplicated before stripping: one pass over the text in C)."""
    raw = set(" ".join(utterances).lower().split())
    stripped = (word.strip(_PUNCTUATION) for word in raw)
    return {word for word in stripped if word}


def vocabulary_size(utterances: Iterable[str]) -> int:
    return len(vocabulary(utterances))


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
