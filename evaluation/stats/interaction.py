"""Interaction-level metrics from games alone (docs/metrics.md, "Interaction level").

Selections are boolean masks over the context images (one column per image, in any fixed order
shared by the masks of a game): ``before``/``after`` are (turns × images), ``targets`` is
(turns × images) or broadcastable to it.
"""

from __future__ import annotations

import numpy as np


def click_counts(
    before: np.ndarray, after: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per turn: (clicks, correct clicks).

    Each newly selected image is one click, correct iff it is a target; each newly deselected
    image is one click, correct iff it is not a target.
    """
    before = np.asarray(before, dtype=bool)
    after = np.asarray(after, dtype=bool)
    targets = np.asarray(targets, dtype=bool)
    selected = after & ~before
    deselected = before & ~after
    clicks = selected.sum(axis=-1) + deselected.sum(axis=-1)
    correct = (selected & targets).sum(axis=-1) + (deselected & ~targets).sum(axis=-1)
    return clicks.astype(np.int64), correct.astype(np.int64)


def success_rate(successful: np.ndarray) -> float:
    """Successful games / games."""
    successful = np.asarray(successful, dtype=bool)
    return _ratio(successful.sum(), successful.size)


def turns_per_game(turns: np.ndarray) -> float:
    """Mean number of turns per game."""
    turns = np.asarray(turns, dtype=float)
    return _ratio(turns.sum(), turns.size)


def click_accuracy(before: np.ndarray, after: np.ndarray, targets: np.ndarray) -> float:
    """Correct clicks / clicks, micro-averaged over every turn given."""
    clicks, correct = click_counts(before, after, targets)
    return _ratio(correct.sum(), clicks.sum())


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")
