"""Cluster bootstrap of statistics that are functions of per-cluster sums (pure numpy/scipy).

Every study metric is a function of sums over games: a rate is ``Σ numerator / Σ denominator``,
a mean is ``Σ values / Σ counts``, Fleiss' κ and Krippendorff's α are functions of summed
per-item quantities. So one resample of games is fully described by how often each game was
drawn, and the sums of a resample are ``counts @ per_game_sums``. A whole group is bootstrapped
with one (B × n_games) count matrix and one matrix product; the jackknife (for BCa) is
``total − per_game_sums``. There is no Python loop over resamples.

The intervals follow ``scipy.stats.bootstrap``'s percentile and BCa definitions; with
``scipy_compatible`` draws (scipy's own ``rng.integers(0, n, (B, n))``) and the same generator
state the two give the same intervals to rounding. By default indices are drawn in a smaller
integer type, which is faster and just as uniform, but a different stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
METHODS = ("bca", "percentile")

SumStatistic = Callable[[np.ndarray], np.ndarray]
"""Maps sums of shape (..., m) to statistic values of shape (..., k); vectorized on leading axes."""


@dataclass(frozen=True)
class Estimate:
    """A point value with its percentile and BCa intervals (NaN where undefined)."""

    value: float
    percentile: tuple[float, float]
    bca: tuple[float, float]
    resamples: int
    undefined_resamples: int = 0

    def interval(self, method: str = "bca") -> tuple[float, float]:
        if method not in METHODS:
            raise ValueError(f"unknown interval method {method!r}; use one of {METHODS}")
        return self.bca if method == "bca" else self.percentile


def resample_indices(
    n: int, resamples: int, rng: np.random.Generator, *, scipy_compatible: bool = False
) -> np.ndarray:
    """(resamples × n) indices of clusters drawn uniformly with replacement.

    Draws use the smallest integer type that holds ``n`` (fast). With ``scipy_compatible`` they
    are drawn as ``scipy.stats.bootstrap`` draws them (int64), so the same generator state gives
    scipy's exact resamples.
    """
    if n < 1:
        raise ValueError("cannot resample an empty set of clusters")
    if resamples < 1:
        raise ValueError("the number of resamples must be positive")
    if scipy_compatible:
        return rng.integers(0, n, (resamples, n))
    dtype = np.int16 if n <= np.iinfo(np.int16).max else np.int64
    return rng.integers(0, n, (resamples, n), dtype=dtype)


def counts_from_indices(indices: np.ndarray, n: int, dtype=np.float64) -> np.ndarray:
    """(B × n) matrix: how often each cluster appears in each resample (exact small integers)."""
    resamples = indices.shape[0]
    flat = (indices + (np.arange(resamples, dtype=np.int64) * n)[:, None]).ravel()
    counts = np.zeros(resamples * n, dtype=dtype)
    np.add.at(counts, flat, dtype(1))
    return counts.reshape(resamples, n)


def resampled_sums(counts: np.ndarray, per_cluster: np.ndarray) -> np.ndarray:
    """``counts @ per_cluster`` in float64, computed in float32 where that is exact.

    A column of integers whose magnitudes times the number of clusters stay below 2**24 has
    every partial sum exactly representable in float32, so single precision (several times
    faster) gives the same numbers; other columns use double precision.
    """
    per_cluster = np.asarray(per_cluster, dtype=np.float64)
    if per_cluster.shape[1] > 1:  # identical columns (shared denominators) are summed once
        first: dict[bytes, int] = {}
        inverse = np.array(
            [first.setdefault(column.tobytes(), len(first)) for column in per_cluster.T]
        )
        if len(first) < per_cluster.shape[1]:
            keep = np.unique(inverse, return_index=True)[1]
            return resampled_sums(counts, per_cluster[:, keep])[:, inverse]
    n = per_cluster.shape[0]
    exact = np.all(per_cluster == np.round(per_cluster), axis=0) & (
        np.abs(per_cluster).max(axis=0, initial=0.0) * max(n, 1) < 2**24
    )
    out = np.empty((counts.shape[0], per_cluster.shape[1]), dtype=np.float64)
    if exact.any():
        single = counts.astype(np.float32, copy=False) @ per_cluster[:, exact].astype(np.float32)
        out[:, exact] = single
    if (~exact).any():
        out[:, ~exact] = counts.astype(np.float64, copy=False) @ per_cluster[:, ~exact]
    return out


def resample_counts(
    n: int, resamples: int, rng: np.random.Generator, *, scipy_compatible: bool = False
) -> np.ndarray:
    """(B × n) cluster counts of ``resamples`` bootstrap resamples; each row sums to ``n``."""
    indices = resample_indices(n, resamples, rng, scipy_compatible=scipy_compatible)
    return counts_from_indices(indices, n)


def ratio_statistic(
    numerators: Sequence[int], denominators: Sequence[int], scale: Sequence[float] | float = 1.0
) -> SumStatistic:
    """Statistic ``scale · sums[num] / sums[den]`` for several ratios at once (NaN on 0/0)."""
    num = np.asarray(numerators, dtype=np.intp)
    den = np.asarray(denominators, dtype=np.intp)
    factor = np.asarray(scale, dtype=float)

    def evaluate(sums: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = sums[..., num] / sums[..., den] * factor
        values[~np.isfinite(values)] = np.nan
        return values

    return evaluate


def bca_levels(
    theta_b: np.ndarray,
    theta_hat: np.ndarray,
    theta_jack: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> np.ndarray:
    """(k × 2) quantile levels of the BCa interval of each column (Efron & Tibshirani 14.3,
    15.4; the same definitions as ``scipy.stats.bootstrap(method="BCa")``)."""
    finite = np.isfinite(theta_b)
    defined = finite.sum(axis=0)
    below = np.where(finite, theta_b < theta_hat, False).sum(axis=0)
    at_or_below = np.where(finite, theta_b <= theta_hat, False).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri((below + at_or_below) / (2.0 * defined))
        usable = np.isfinite(theta_jack)
        n_jack = usable.sum(axis=0)
        jack = np.where(usable, theta_jack, 0.0)
        jack_mean = jack.sum(axis=0) / n_jack
        u = np.where(usable, (n_jack - 1) * (jack_mean - jack), 0.0)
        num = (u**3).sum(axis=0) / n_jack**3
        den = (u**2).sum(axis=0) / n_jack**2
        a_hat = num / (6.0 * den**1.5)
    a_hat = np.where(den > 0, a_hat, 0.0)
    z_alpha = float(ndtri((1.0 - confidence) / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = z0 + z_alpha
        upper = z0 - z_alpha
        return np.stack(
            [ndtr(z0 + lower / (1 - a_hat * lower)), ndtr(z0 + upper / (1 - a_hat * upper))],
            axis=1,
        )


def _fix_degenerate(interval: np.ndarray, theta_b: np.ndarray, theta_hat: np.ndarray) -> None:
    """A single-valued bootstrap distribution gives [value, value]; an undefined estimate NaN."""
    finite = np.isfinite(theta_b)
    lo = np.min(theta_b, axis=0, initial=np.inf, where=finite)
    hi = np.max(theta_b, axis=0, initial=-np.inf, where=finite)
    degenerate = (finite.sum(axis=0) > 0) & (lo == hi)
    interval[degenerate] = np.stack([lo, hi], axis=1)[degenerate]
    interval[~np.isfinite(theta_hat)] = np.nan


def bca_interval(
    theta_b: np.ndarray,
    theta_hat: np.ndarray,
    theta_jack: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> np.ndarray:
    """(k × 2) bias-corrected and accelerated intervals.

    ``theta_b``: (B × k) bootstrap values; ``theta_hat``: (k,) estimates on the data;
    ``theta_jack``: (n × k) leave-one-cluster-out estimates. A column whose bootstrap
    distribution is a single value gets the interval [value, value]; a column whose estimate is
    undefined gets NaN.
    """
    interval = _column_quantiles(theta_b, bca_levels(theta_b, theta_hat, theta_jack, confidence))
    _fix_degenerate(interval, theta_b, theta_hat)
    return interval


def _column_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles of each column of ``values`` at that column's ``levels``.

    NaNs are ignored per column. Each column is partitioned around the order statistics it
    needs (no full sort).
    """
    result = np.full(levels.shape, np.nan)
    for j in range(values.shape[1]):
        column = values[:, j]
        finite = np.isfinite(column)
        if not finite.all():
            column = column[finite]
        size = column.size
        wanted = np.isfinite(levels[j])
        if size == 0 or not wanted.any():
            continue
        position = levels[j, wanted] * (size - 1)
        low = np.floor(position).astype(np.intp)
        high = np.minimum(low + 1, size - 1)
        ordered = np.partition(column, np.unique(np.concatenate([low, high])))
        result[j, wanted] = ordered[low] + (position - low) * (ordered[high] - ordered[low])
    return result


def interval_estimates(
    statistic: SumStatistic,
    total: np.ndarray,
    jackknife: np.ndarray,
    resampled: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[Estimate]:
    """Estimates from sums: ``total`` (m,) of the data, ``jackknife`` (n × m) leaving out one
    cluster each, ``resampled`` (B × m) of each bootstrap resample."""
    theta_hat = np.atleast_1d(statistic(total))
    theta_b = statistic(resampled)
    theta_jack = statistic(jackknife)
    alpha = (1.0 - confidence) / 2.0
    levels = np.concatenate(
        [
            np.broadcast_to(np.array([alpha, 1.0 - alpha]), (theta_b.shape[1], 2)),
            bca_levels(theta_b, theta_hat, theta_jack, confidence),
        ],
        axis=1,
    )
    quantiles = _column_quantiles(theta_b, levels)  # one partition per column for both
    percentile, bca = quantiles[:, :2].copy(), quantiles[:, 2:].copy()
    _fix_degenerate(bca, theta_b, theta_hat)
    undefined = (~np.isfinite(theta_b)).sum(axis=0)
    return [
        Estimate(
            value=float(theta_hat[j]),
            percentile=(float(percentile[j, 0]), float(percentile[j, 1])),
            bca=(float(bca[j, 0]), float(bca[j, 1])),
            resamples=int(resampled.shape[0]),
            undefined_resamples=int(undefined[j]),
        )
        for j in range(theta_hat.shape[0])
    ]


def cluster_bootstrap(
    per_cluster: np.ndarray,
    statistic: SumStatistic,
    *,
    counts: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[Estimate]:
    """Estimates with percentile and BCa intervals of every column of ``statistic``.

    ``per_cluster`` is (n × m): each cluster's (game's) contribution to the m sums; ``counts``
    is a (B × n) resample count matrix from ``resample_counts``.
    """
    per_cluster = np.asarray(per_cluster, dtype=float)
    if per_cluster.ndim != 2 or counts.shape[1] != per_cluster.shape[0]:
        raise ValueError("per-cluster sums must be (clusters × sums) matching the count matrix")
    total = per_cluster.sum(axis=0)
    return interval_estimates(
        statistic, total, total - per_cluster, resampled_sums(counts, per_cluster), confidence
    )
