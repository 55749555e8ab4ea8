"""Cost planning: how many games per system a round needs to tell two success rates apart.

For two systems with observed success rates p̂_a and p̂_b, resampling n games per system from
the observed games (with replacement) makes each resampled success count Binomial(n, p̂), so the
bootstrap distribution of the difference of success rates at n games is drawn directly. The
estimate is the smallest n whose percentile interval of that difference excludes zero at the
given confidence (pure numpy; seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GAMES = 5000


@dataclass(frozen=True)
class PowerEstimate:
    """``games_per_system`` is None when even ``MAX_GAMES`` games per system would not exclude
    zero (including when the observed difference is zero)."""

    observed_difference: float
    games_per_system: int | None
    confidence: float


def excludes_zero(
    p_a: float, p_b: float, n: int, rng: np.random.Generator, resamples: int, confidence: float
) -> bool:
    differences = (rng.binomial(n, p_a, resamples) - rng.binomial(n, p_b, resamples)) / n
    alpha = (1 - confidence) / 2
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    return bool(low > 0 or high < 0)


def games_needed(
    successes_a: int,
    games_a: int,
    successes_b: int,
    games_b: int,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PowerEstimate:
    """The smallest games-per-system count whose bootstrap interval of the difference excludes 0."""
    if games_a < 1 or games_b < 1:
        raise ValueError("each system needs at least one observed game")
    p_a, p_b = successes_a / games_a, successes_b / games_b
    difference = p_a - p_b

    def separated(n: int) -> bool:
        return excludes_zero(p_a, p_b, n, np.random.default_rng([seed, n]), resamples, confidence)

    if difference == 0 or not separated(MAX_GAMES):
        return PowerEstimate(difference, None, confidence)
    low, high = 1, MAX_GAMES
    while low < high:
        middle = (low + high) // 2
        if separated(middle):
            high = middle
        else:
            low = middle + 1
    return PowerEstimate(difference, low, confidence)
