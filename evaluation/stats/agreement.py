"""Agreement between annotators on turns annotated by several of them (docs/metrics.md).

Ratings arrive in long form: one (item, rater, value) triple per annotation; values are any
hashable labels (correctness booleans, action strings, satisfaction answers). Most measures only
need the item × category count table: ``counts[i, c]`` = how many raters gave item i value c.

Fleiss' κ needs the same number of raters on every item; ``fleiss_items`` picks the items with
the most common number of raters (at least two). Krippendorff's α (nominal) takes any number of
raters per item and ignores items with fewer than two. Both are written as functions of sums
over items, so ``evaluation.stats.bootstrap`` can resample them by game.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatingTable:
    items: np.ndarray  # (n,) item ids, sorted
    categories: np.ndarray  # (C,) category labels, sorted
    counts: np.ndarray  # (n, C) raters per item and category


def rating_table(
    items: Sequence[Hashable], values: Sequence[Hashable], categories: Sequence[Hashable] = ()
) -> RatingTable:
    """Count table of long-form ratings; ``categories`` adds categories nobody used."""
    item_ids, item_codes = np.unique(np.asarray(items), return_inverse=True)
    labels = np.asarray(list(values) + list(categories), dtype=object)
    category_ids, value_codes = np.unique(labels.astype(str), return_inverse=True)
    counts = np.zeros((item_ids.size, category_ids.size), dtype=np.int64)
    np.add.at(counts, (item_codes.ravel(), value_codes[: len(values)]), 1)
    return RatingTable(item_ids, category_ids, counts)


def raters_per_item(counts: np.ndarray) -> np.ndarray:
    return np.asarray(counts).sum(axis=1)


def unanimous(counts: np.ndarray) -> np.ndarray:
    """Per item: every rater gave the same value."""
    counts = np.asarray(counts)
    return counts.max(axis=1) == counts.sum(axis=1)


def percent_agreement(counts: np.ndarray) -> float:
    """Fraction of items rated at least twice on which all raters agree."""
    counts = np.asarray(counts)
    rated = raters_per_item(counts) >= 2
    if not rated.any():
        return float("nan")
    return float(unanimous(counts[rated]).mean())


def fleiss_items(counts: np.ndarray) -> np.ndarray:
    """Mask of the items used by Fleiss' κ: those with the most common rater count (≥ 2)."""
    m = raters_per_item(counts)
    eligible = m[m >= 2]
    if eligible.size == 0:
        return np.zeros(m.shape, dtype=bool)
    values, frequency = np.unique(eligible, return_counts=True)
    common = values[frequency == frequency.max()].max()
    return m == common


def fleiss_parts(counts: np.ndarray, mask: np.ndarray | None = None):
    """Per item: linear sums [P_i, 1] and category counts n_ij (zeros outside ``mask``).

    With T_j = Σ_i n_ij, Fleiss' κ needs [Σ P_i, N, Σ_j T_j, Σ_j T_j²] (``fleiss_statistic``).
    """
    counts = np.asarray(counts, dtype=float)
    if mask is None:
        mask = fleiss_items(counts)
    keep = np.asarray(mask, dtype=bool)
    m = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    linear = np.column_stack([np.where(keep, p_i, 0.0), keep.astype(float)])
    return linear, np.where(keep[:, None], counts, 0.0)


def fleiss_statistic(sums: np.ndarray) -> np.ndarray:
    """Fleiss' κ from [Σ P_i, N, Σ_j T_j, Σ_j T_j²] (..., 4) → (..., 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bar = sums[..., 0] / sums[..., 1]
        p_e = sums[..., 3] / sums[..., 2] ** 2
        kappa = (p_bar - p_e) / (1.0 - p_e)
    kappa = np.where(np.isfinite(kappa), kappa, np.nan)
    return kappa[..., None]


def _with_square_totals(linear: np.ndarray, categories: np.ndarray) -> np.ndarray:
    totals = categories.sum(axis=0)
    return np.concatenate([linear.sum(axis=0), [totals.sum(), (totals**2).sum()]])


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ over the items ``fleiss_items`` selects."""
    linear, categories = fleiss_parts(counts)
    return float(fleiss_statistic(_with_square_totals(linear, categories))[0])


def krippendorff_parts(counts: np.ndarray):
    """Per item: linear sums [D_u] and pairable value counts n_uc (zeros when m_u < 2).

    D_u = (m_u² − Σ_c n_uc²)/(m_u − 1) is the item's share of the off-diagonal coincidences.
    With n_c = Σ_u n_uc, α needs [Σ D_u, Σ_c n_c, Σ_c n_c²] (``krippendorff_statistic``).
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    pairable = m >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        disagreement = np.where(pairable, (m**2 - (counts**2).sum(axis=1)) / (m - 1), 0.0)
    return disagreement[:, None], np.where(pairable[:, None], counts, 0.0)


def krippendorff_statistic(sums: np.ndarray) -> np.ndarray:
    """Krippendorff's α (nominal) from [Σ D_u, n, Σ_c n_c²] (..., 3) → (..., 1).

    α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k, with Σ_{c≠k} n_c n_k = n² − Σ_c n_c².
    """
    n = sums[..., 1]
    expected = n**2 - sums[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * sums[..., 0] / expected
    alpha = np.where(np.isfinite(alpha), alpha, np.nan)
    return alpha[..., None]


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    linear, categories = krippendorff_parts(counts)
    return float(krippendorff_statistic(_with_square_totals(linear, categories))[0])


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Cohen's κ of two raters over the same items (NaN when chance agreement is 1)."""
    a = np.asarray(first, dtype=object).astype(str)
    b = np.asarray(second, dtype=object).astype(str)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("Cohen's kappa needs two equally long, non-empty rating lists")
    _, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    categories = codes.max() + 1
    table = np.zeros((categories, categories))
    np.add.at(table, (codes[: a.size], codes[a.size :]), 1.0)
    total = table.sum()
    observed = np.trace(table) / total
    expected = (table.sum(axis=1) @ table.sum(axis=0)) / total**2
    if expected >= 1.0:
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


@dataclass(frozen=True)
class PairKappa:
    first: str
    second: str
    items: int
    kappa: float


def pairwise_cohen_kappa(
    items: Sequence[Hashable],
    raters: Sequence[Hashable],
    values: Sequence[Hashable],
    min_items: int = 1,
) -> list[PairKappa]:
    """Cohen's κ for every pair of raters sharing at least ``min_items`` items.

    Vectorized over pairs: every pair of ratings of one item is one observation of its rater
    pair; observed agreement and chance agreement come from counts per pair (and per category).
    A rater who rates an item twice counts once (the last rating).
    """
    if len(items) == 0:
        return []
    item_ids = np.unique(np.asarray(items), return_inverse=True)[1].ravel()
    rater_names, rater_codes = np.unique(
        np.asarray(raters, dtype=object).astype(str), return_inverse=True
    )
    value_codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)[1]
    rater_codes, value_codes = rater_codes.ravel(), value_codes.ravel()
    order = np.lexsort((rater_codes, item_ids))
    item_s, rater_s, value_s = item_ids[order], rater_codes[order], value_codes[order]
    last = np.r_[(item_s[1:] != item_s[:-1]) | (rater_s[1:] != rater_s[:-1]), True]
    item_s, rater_s, value_s = item_s[last], rater_s[last], value_s[last]
    firsts, seconds, first_values, second_values = [], [], [], []
    for offset in range(1, item_s.size):
        same = item_s[offset:] == item_s[:-offset]
        if not same.any():
            break
        firsts.append(rater_s[:-offset][same])
        seconds.append(rater_s[offset:][same])
        first_values.append(value_s[:-offset][same])
        second_values.append(value_s[offset:][same])
    if not firsts:
        return []
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    a, b = np.concatenate(first_values), np.concatenate(second_values)
    raters_total = rater_names.size
    pair_keys, pair = np.unique(first * raters_total + second, return_inverse=True)
    pair = pair.ravel()
    shared = np.bincount(pair).astype(float)
    observed = np.bincount(pair, weights=(a == b).astype(float)) / shared
    categories = int(max(a.max(), b.max())) + 1
    keys_a, counts_a = np.unique(pair * categories + a, return_counts=True)
    keys_b, counts_b = np.unique(pair * categories + b, return_counts=True)
    common, in_a, in_b = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
    chance = (
        np.bincount(
            common // categories,
            weights=counts_a[in_a].astype(float) * counts_b[in_b],
            minlength=pair_keys.size,
        )
        / shared**2
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(chance < 1.0, (observed - chance) / (1.0 - chance), np.nan)
    return [
        PairKappa(
            str(rater_names[key // raters_total]),
            str(rater_names[key % raters_total]),
            int(shared[p]),
            float(kappa[p]),
        )
        for p, key in enumerate(pair_keys.tolist())
        if shared[p] >= max(min_items, 1)
    ]
