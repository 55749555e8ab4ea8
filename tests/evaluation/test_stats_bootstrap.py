"""The vectorized cluster bootstrap against scipy.stats.bootstrap, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation.stats import agreement as agr
from evaluation.stats.bootstrap import (
    bca_interval,
    cluster_bootstrap,
    counts_from_indices,
    ratio_statistic,
    resample_counts,
    resample_indices,
    resampled_sums,
)


def ratio(num, den, axis=-1):
    return num.sum(axis=axis) / den.sum(axis=axis)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("n", [7, 40, 150])
def test_equals_scipy_with_the_same_draws(method, n):
    rng = np.random.default_rng(n)
    numerators = rng.integers(0, 9, n).astype(float)
    denominators = numerators + rng.integers(0, 4, n) + 1
    expected = stats.bootstrap(
        (numerators, denominators),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=3000,
        method=method,
        rng=np.random.default_rng(99),
    ).confidence_interval
    counts = resample_counts(n, 3000, np.random.default_rng(99), scipy_compatible=True)
    (estimate,) = cluster_bootstrap(
        np.column_stack([numerators, denominators]), ratio_statistic([0], [1]), counts=counts
    )
    assert estimate.value == numerators.sum() / denominators.sum()
    assert estimate.interval(method) == pytest.approx(
        (expected.low, expected.high), rel=1e-12, abs=0
    )


def test_equals_scipy_for_a_mean_of_real_values():
    rng = np.random.default_rng(5)
    values = rng.normal(size=60)
    expected = stats.bootstrap(
        (values,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(1)
    ).confidence_interval
    counts = resample_counts(60, 2000, np.random.default_rng(1), scipy_compatible=True)
    (estimate,) = cluster_bootstrap(
        np.column_stack([values, np.ones(60)]), ratio_statistic([0], [1]), counts=counts
    )
    assert estimate.bca == pytest.approx((expected.low, expected.high), rel=1e-9)


def test_counts_are_multinomial_resamples():
    counts = resample_counts(25, 4000, np.random.default_rng(0))
    assert counts.shape == (4000, 25)
    assert np.all(counts.sum(axis=1) == 25)
    indices = resample_indices(25, 3, np.random.default_rng(1))
    by_hand = np.array([np.bincount(row, minlength=25) for row in indices])
    assert np.array_equal(counts_from_indices(indices, 25), by_hand)
    # each cluster is drawn once per resample on average (4000 · 25 draws)
    assert abs(counts.mean(axis=0) - 1).max() < 0.1


def test_fast_draws_give_intervals_close_to_scipy():
    rng = np.random.default_rng(8)
    numerators = rng.integers(0, 2, 300).astype(float)
    denominators = np.ones(300)
    expected = stats.bootstrap(
        (numerators, denominators),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=20000,
        method="BCa",
        rng=np.random.default_rng(3),
    ).confidence_interval
    counts = resample_counts(300, 20000, np.random.default_rng(4))
    (estimate,) = cluster_bootstrap(
        np.column_stack([numerators, denominators]), ratio_statistic([0], [1]), counts=counts
    )
    assert estimate.bca == pytest.approx((expected.low, expected.high), abs=0.005)


def test_resampled_sums_are_exact_in_any_precision():
    rng = np.random.default_rng(9)
    n = 200
    counts = resample_counts(n, 300, rng)
    integer = rng.integers(0, 40, (n, 3)).astype(float)
    real = rng.normal(size=(n, 2))
    huge = np.full((n, 1), 2.0**20)  # n · 2**20 ≥ 2**24: needs double precision
    per_cluster = np.concatenate([integer, real, integer[:, :1], huge], axis=1)
    expected = counts.astype(np.float64) @ per_cluster
    got = resampled_sums(counts.astype(np.float32), per_cluster)
    assert np.array_equal(got[:, :3], expected[:, :3])
    assert np.array_equal(got[:, 5], expected[:, 0]) and np.array_equal(got[:, 6], expected[:, 6])
    assert np.allclose(got[:, 3:5], expected[:, 3:5], rtol=1e-12, atol=1e-12)


def test_seeded_and_reproducible():
    first = resample_counts(30, 100, np.random.default_rng(7))
    again = resample_counts(30, 100, np.random.default_rng(7))
    other = resample_counts(30, 100, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_degenerate_and_undefined_statistics():
    per_game = np.column_stack([np.ones(10), np.ones(10), np.zeros(10)])
    counts = resample_counts(10, 500, np.random.default_rng(0))
    constant, undefined = cluster_bootstrap(
        per_game, ratio_statistic([0, 2], [1, 2]), counts=counts
    )
    assert constant.value == 1.0
    assert constant.bca == (1.0, 1.0) and constant.percentile == (1.0, 1.0)
    assert np.isnan(undefined.value) and np.isnan(undefined.bca[0])
    assert undefined.undefined_resamples == 500


def test_undefined_resamples_are_left_out():
    # one game holds every denominator: resamples without it are undefined
    per_game = np.column_stack([np.r_[3.0, np.zeros(4)], np.r_[4.0, np.zeros(4)]])
    counts = resample_counts(5, 1000, np.random.default_rng(2))
    (estimate,) = cluster_bootstrap(per_game, ratio_statistic([0], [1]), counts=counts)
    assert estimate.undefined_resamples == int((counts[:, 0] == 0).sum())
    assert estimate.percentile == (0.75, 0.75)


def test_bca_of_several_columns_equals_column_by_column():
    rng = np.random.default_rng(4)
    theta_b = rng.normal(size=(999, 3))
    theta_hat = np.array([0.1, -0.2, 0.0])
    jack = rng.normal(size=(40, 3))
    together = bca_interval(theta_b, theta_hat, jack)
    for j in range(3):
        alone = bca_interval(theta_b[:, [j]], theta_hat[[j]], jack[:, [j]])
        assert np.array_equal(together[j], alone[0])


def test_fleiss_and_alpha_resamples_equal_recomputation_on_resampled_items():
    """Per-game sums and Gram-matrix squares give the κ/α of the resampled items exactly."""
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    from evaluation.stats.sums import SumColumns

    rng = np.random.default_rng(6)
    n_games, n_items = 12, 30
    item_game = rng.integers(0, n_games, n_items)
    table = rng.multinomial(3, [0.5, 0.2, 0.2, 0.1], size=n_items)
    columns = SumColumns(n_games)

    def per_game(block):
        out = np.zeros((n_games, block.shape[1]))
        np.add.at(out, item_game, block)
        return out

    linear, categories = agr.fleiss_parts(table)
    where = columns.add(per_game(linear))
    squares = columns.add_square_totals(per_game(categories))
    columns.custom(["kappa"], np.r_[where.start, where.start + 1, squares], agr.fleiss_statistic)
    linear, categories = agr.krippendorff_parts(table)
    where = columns.add(per_game(linear))
    squares = columns.add_square_totals(per_game(categories))
    columns.custom(["alpha"], np.r_[where.start, squares], agr.krippendorff_statistic)

    counts = resample_counts(n_games, 5, np.random.default_rng(1))
    total, jackknife, resampled = columns.sums(iter([counts]))
    values = columns.statistic()(resampled)
    for b in range(5):
        repeats = counts[b].astype(int)[item_game]
        items = np.repeat(table, repeats, axis=0)
        assert values[b, 0] == pytest.approx(statsmodels_fleiss(items), abs=1e-9)
        assert values[b, 1] == pytest.approx(agr.krippendorff_alpha_nominal(items), abs=1e-9)
    point = columns.statistic()(total)
    assert point[0] == pytest.approx(statsmodels_fleiss(table), abs=1e-12)
    left_out = columns.statistic()(jackknife)
    for game in range(n_games):
        rest = table[item_game != game]
        assert left_out[game, 0] == pytest.approx(statsmodels_fleiss(rest), abs=1e-9)
