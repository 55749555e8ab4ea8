"""Turn-level metrics against post-hoc annotations (docs/metrics.md, "Turn level").

Actions are pairs of boolean masks over a turn's context images (one column per image, the same
column order for the model's action â and the annotator's a*): ``select`` and ``deselect``, each
(items × images). Similarities between the context images of each item are given as an
(items × images × images) array, or one (images × images) array shared by every item.

A turn annotated by k annotators counts once: each of its annotations weighs 1/k (pass such
``weights``; without them every item weighs 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SATISFIED = ("yes", "yes_incomplete", "yes_wrong")
"""Satisfaction answers that count as positive feedback on the platform ("any yes"); the paper's
conventions count only a plain ``yes`` (``evaluation.stats.conventions``)."""


def actions_equal(
    pred_select: np.ndarray,
    pred_deselect: np.ndarray,
    gold_select: np.ndarray,
    gold_deselect: np.ndarray,
) -> np.ndarray:
    """Per item: â = a* (same images selected and deselected)."""
    return np.all(np.asarray(pred_select, bool) == np.asarray(gold_select, bool), axis=-1) & np.all(
        np.asarray(pred_deselect, bool) == np.asarray(gold_deselect, bool), axis=-1
    )


def _part(pred: np.ndarray, gold: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, ...]:
    """(sum, denominator) of one part (selects or deselects) of Sim, one-empty case included."""
    n_pred = pred.sum(axis=-1).astype(float)
    n_gold = gold.sum(axis=-1).astype(float)
    pred_f = pred.astype(float)
    gold_f = gold.astype(float)
    if similarity.ndim == 2:
        pair_sum = np.einsum("ik,kl,il->i", pred_f, similarity, gold_f)
    else:
        pair_sum = np.einsum("ik,ikl,il->i", pred_f, similarity, gold_f)
    one_empty = (n_pred == 0) ^ (n_gold == 0)
    most = np.maximum(n_pred, n_gold)
    total = np.where(one_empty, -most, pair_sum)
    denominator = np.where(one_empty, most, n_pred * n_gold)
    return total, denominator


def action_similarity(
    pred_select: np.ndarray,
    pred_deselect: np.ndarray,
    gold_select: np.ndarray,
    gold_deselect: np.ndarray,
    similarity: np.ndarray,
) -> np.ndarray:
    """Per item: Sim(â, a*) of the paper's eq. (3), in [-1, 1].

    Sim = (Σ f(p̂_i, p*_j) + Σ f(q̂_i, q*_j)) / (|p̂||p*| + |q̂||q*|) with p the selected and q the
    deselected images. If exactly one of |p̂|, |p*| is zero, the select part adds −max(|p̂|, |p*|)
    to the sum and max(|p̂|, |p*|) to the denominator (−1 per missed click); the same for
    deselects. If both actions are empty they are identical and Sim = 1.
    """
    similarity = np.asarray(similarity, dtype=float)
    select_sum, select_den = _part(
        np.asarray(pred_select, bool), np.asarray(gold_select, bool), similarity
    )
    deselect_sum, deselect_den = _part(
        np.asarray(pred_deselect, bool), np.asarray(gold_deselect, bool), similarity
    )
    denominator = select_den + deselect_den
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (select_sum + deselect_sum) / denominator
    return np.where(denominator > 0, value, 1.0)


def _weighted_mean(values: np.ndarray, mask: np.ndarray, weights: np.ndarray | None) -> float:
    values = np.asarray(values, dtype=float)
    w = np.ones(values.shape) if weights is None else np.asarray(weights, dtype=float)
    w = np.where(mask, w, 0.0)
    total = w.sum()
    return float((w * values).sum() / total) if total > 0 else float("nan")


def exact_match_rate(matches: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Annotated turns with â = a* / annotated turns."""
    matches = np.asarray(matches, dtype=bool)
    return _weighted_mean(matches, np.ones(matches.shape, bool), weights)


def is_satisfied(satisfaction: np.ndarray, answers: Sequence[str] = SATISFIED) -> np.ndarray:
    """Per annotation: its answer is one of ``answers`` (those counted as positive feedback)."""
    return np.isin(np.asarray(satisfaction, dtype=object), np.asarray(answers, dtype=object))


def has_satisfaction(satisfaction: np.ndarray) -> np.ndarray:
    """Annotations that answered phase 2 (the last turn of a game has no follow-up: "")."""
    return np.asarray(satisfaction, dtype=object) != ""


def without_positive_feedback(
    satisfaction: np.ndarray, answers: Sequence[str] = SATISFIED
) -> np.ndarray:
    """Per annotation: answered, but not with one of ``answers`` (the paper's Sim −FB turns)."""
    satisfaction = np.asarray(satisfaction, dtype=object)
    return has_satisfaction(satisfaction) & ~is_satisfied(satisfaction, answers)


def positive_feedback_rate(
    satisfaction: np.ndarray,
    weights: np.ndarray | None = None,
    answers: Sequence[str] = SATISFIED,
) -> float:
    """Turns annotated satisfied (an answer in ``answers``; default any yes) / annotated turns
    with a satisfaction answer."""
    satisfaction = np.asarray(satisfaction, dtype=object)
    return _weighted_mean(
        is_satisfied(satisfaction, answers), has_satisfaction(satisfaction), weights
    )


def mean_similarity(sim: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean Sim(â, a*) over annotated turns."""
    sim = np.asarray(sim, dtype=float)
    return _weighted_mean(sim, np.ones(sim.shape, bool), weights)


def negative_feedback_similarity(
    sim: np.ndarray, negative: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Sim −FB: mean Sim(â, a*) over the annotations in ``negative`` (the platform: feedback
    mapped to negative; the paper: ``without_positive_feedback``)."""
    return _weighted_mean(sim, np.asarray(negative, dtype=bool), weights)
