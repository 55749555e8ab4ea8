"""Cost planning: games per system needed for a difference of success rates to exclude zero."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation.stats.power import excludes_zero, games_needed


def normal_approximation(p_a: float, p_b: float, confidence: float = 0.95) -> float:
    """n with z·sqrt((p_a(1−p_a) + p_b(1−p_b)) / n) = |p_a − p_b| (the textbook formula)."""
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    return z**2 * (p_a * (1 - p_a) + p_b * (1 - p_b)) / (p_a - p_b) ** 2


@pytest.mark.parametrize(("a", "b"), [(30, 10), (60, 40), (45, 35), (25, 15)])
def test_estimate_agrees_with_the_normal_approximation(a, b):
    estimate = games_needed(a, 100, b, 100, seed=1)
    expected = normal_approximation(a / 100, b / 100)
    assert estimate.observed_difference == pytest.approx((a - b) / 100)
    assert estimate.games_per_system == pytest.approx(expected, rel=0.15)


def test_estimate_is_the_smallest_separating_size_and_seeded():
    estimate = games_needed(60, 100, 40, 100, seed=3)
    n = estimate.games_per_system
    assert excludes_zero(0.6, 0.4, n, np.random.default_rng([3, n]), 2000, 0.95)
    assert not excludes_zero(0.6, 0.4, n - 1, np.random.default_rng([3, n - 1]), 2000, 0.95)
    assert games_needed(60, 100, 40, 100, seed=3) == estimate


def test_no_difference_means_no_finite_estimate():
    assert games_needed(30, 60, 15, 30).games_per_system is None
    tiny = games_needed(501, 1000, 500, 1000)
    assert tiny.games_per_system is None  # the normal approximation asks for 1.9 million
    with pytest.raises(ValueError, match="at least one observed game"):
        games_needed(0, 0, 1, 2)
