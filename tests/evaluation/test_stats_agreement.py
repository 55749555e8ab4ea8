"""Agreement statistics against statsmodels, krippendorff and scikit-learn (to 1e-9)."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from evaluation.stats import agreement as agr


def test_percent_agreement_is_the_fraction_of_unanimous_items():
    items = [1, 1, 1, 2, 2, 2, 3, 3, 4]
    values = ["a", "a", "a", "a", "b", "a", "c", "c", "a"]
    table = agr.rating_table(items, values)
    assert agr.unanimous(table.counts).tolist() == [True, False, True, True]
    # item 4 has one rating: not an agreement item
    assert agr.percent_agreement(table.counts) == 2 / 3


def long_form(data: np.ndarray):
    """(raters × units) with NaN for missing → long-form (unit, rater, value)."""
    raters, units = np.nonzero(~np.isnan(data))
    return units, raters, data[raters, units].astype(int)


ratings = st.integers(2, 6).flatmap(
    lambda raters: st.integers(3, 25).flatmap(
        lambda units: st.lists(
            st.one_of(st.none(), st.integers(0, 3)),
            min_size=raters * units,
            max_size=raters * units,
        ).map(
            lambda v: np.array([np.nan if x is None else x for x in v], float).reshape(
                raters, units
            )
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(ratings)
def test_krippendorff_alpha_matches_the_reference_library(data):
    units, raters, values = long_form(data)
    table = agr.rating_table(units, values)
    ours = agr.krippendorff_alpha_nominal(table.counts)
    pairable = agr.raters_per_item(table.counts) >= 2
    domain = np.unique(table.counts[pairable].nonzero()[1])
    if domain.size < 2:
        assert np.isnan(ours) or ours == 1.0 or ours == pytest.approx(1.0)
        return
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert ours == pytest.approx(expected, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda m: st.lists(
            st.lists(st.integers(0, 3), min_size=m, max_size=m), min_size=2, max_size=30
        )
    )
)
def test_fleiss_kappa_matches_statsmodels(rows):
    items = [i for i, row in enumerate(rows) for _ in row]
    values = [v for row in rows for v in row]
    table = agr.rating_table(items, values, categories=[0, 1, 2, 3])
    ours = agr.fleiss_kappa(table.counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = statsmodels_fleiss(table.counts)
    if not np.isfinite(expected):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(expected, abs=1e-9)


def test_fleiss_uses_the_most_common_number_of_raters():
    items = [1, 1, 1, 2, 2, 2, 3, 3, 4]
    values = ["a", "a", "b", "b", "b", "b", "a", "b", "a"]
    table = agr.rating_table(items, values)
    assert agr.fleiss_items(table.counts).tolist() == [True, True, False, False]
    assert agr.fleiss_kappa(table.counts) == pytest.approx(
        statsmodels_fleiss(table.counts[:2]), abs=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(ratings)
def test_pairwise_cohen_kappa_matches_sklearn(data):
    units, raters, values = long_form(data)
    pairs = agr.pairwise_cohen_kappa(units, raters, values)
    expected_pairs = 0
    for first in range(data.shape[0]):
        for second in range(first + 1, data.shape[0]):
            both = ~np.isnan(data[first]) & ~np.isnan(data[second])
            if not both.any():
                continue
            expected_pairs += 1
            pair = next(p for p in pairs if (p.first, p.second) == (str(first), str(second)))
            assert pair.items == both.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expected = cohen_kappa_score(data[first][both], data[second][both])
            if np.isnan(expected):
                assert np.isnan(pair.kappa)
            else:
                assert pair.kappa == pytest.approx(expected, abs=1e-9)
    assert len(pairs) == expected_pairs


def test_string_labels_and_booleans_work_like_codes():
    items = [1, 1, 2, 2, 3, 3]
    raters = ["x", "y", "x", "y", "x", "y"]
    assert agr.pairwise_cohen_kappa(items, raters, [True, True, False, True, False, False])[
        0
    ].kappa == pytest.approx(cohen_kappa_score([1, 0, 0], [1, 1, 0]), abs=1e-12)
    assert agr.cohen_kappa(["a", "b"], ["a", "b"]) == 1.0
