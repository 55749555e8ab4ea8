"""Agreement statistics: the pure module against hand-computed values, and the admin export."""

from __future__ import annotations

import csv
import io

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotation.agreement import Rating, agreement, dimension_stats
from annotation.survey import submit_answer
from annotation.work_queue import claim_next
from tests.factories import make_user

from .conftest import annotate, arrive, make_batch

# Three turns, three raters; listener actions select A / select B / select C.
ANSWERS = {
    "w1": [("select A", "yes"), ("select B", "no"), ("select C", "")],
    "w2": [("select A", "yes"), ("select B", "no"), ("select D", "")],
    "w3": [("select B", "no"), ("select B", "no"), ("select D", "")],
}
LISTENER = ["select A", "select B", "select C"]
# Worked by hand (Fleiss 1971; Krippendorff's coincidence matrices, nominal metric):
EXPECTED = {
    "correctness": {
        "items": 3,
        "percent_all_agree": 1 / 3,
        "fleiss_kappa": 0.0,
        "fleiss_items": 3,
        "krippendorff_alpha": 1 / 9,
    },
    "action": {
        "items": 3,
        "percent_all_agree": 1 / 3,
        "fleiss_kappa": 5 / 14,
        "fleiss_items": 3,
        "krippendorff_alpha": 3 / 7,
    },
    "satisfaction": {
        "items": 2,
        "percent_all_agree": 1 / 2,
        "fleiss_kappa": 1 / 4,
        "fleiss_items": 2,
        "krippendorff_alpha": 3 / 8,
    },
}


def ratings():
    return [
        [
            Rating(rater, ANSWERS[rater][turn][0], LISTENER[turn], ANSWERS[rater][turn][1])
            for rater in ANSWERS
        ]
        for turn in range(3)
    ]


def scalars(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "cohen_kappa_pairs"}


def test_statistics_match_hand_computed_values():
    stats = {name: s.as_dict() for name, s in agreement(ratings()).items()}
    for dimension, expected in EXPECTED.items():
        assert scalars(stats[dimension]) == pytest.approx(expected, abs=1e-12), dimension


def test_cohen_kappa_per_pair_matches_scikit_learn():
    stats = agreement(ratings())
    for dimension, key in (("correctness", lambda r: r.correct), ("action", lambda r: r.action)):
        pairs = {p.raters: p for p in stats[dimension].pairs}
        assert sorted(pairs) == [("w1", "w2"), ("w1", "w3"), ("w2", "w3")]
        for (first, second), pair in pairs.items():
            a = [key(next(r for r in item if r.rater == first)) for item in ratings()]
            b = [key(next(r for r in item if r.rater == second)) for item in ratings()]
            assert pair.items == 3
            assert pair.cohen_kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    # by hand, correctness of w1 and w2: p_o = 2/3, p_e = 1 * 2/3 -> kappa 0
    assert {p.raters: p for p in stats["correctness"].pairs}[("w1", "w2")].cohen_kappa == 0.0


def test_perfect_agreement_on_one_category_has_no_defined_kappa_or_alpha():
    stats = dimension_stats([[("a", "x"), ("b", "x")], [("a", "x"), ("b", "x")]])
    assert (stats.percent_all_agree, stats.fleiss_kappa, stats.krippendorff_alpha) == (
        1.0,
        None,
        None,
    )


def test_fleiss_uses_items_with_the_usual_number_of_raters_and_alpha_uses_all():
    items = [
        [("a", 1), ("b", 1), ("c", 0)],
        [("a", 0), ("b", 0), ("c", 0)],
        [("a", 1), ("b", 0)],
        [("a", 1)],
    ]
    stats = dimension_stats(items)
    assert (stats.items, stats.fleiss_items) == (3, 2)  # the single-rater item is no item
    # alpha by hand: o_11=1, o_10=o_01=1+1, o_00=3; n_1=3, n_0=5, n=8
    # D_o = 4/8, D_e = 2*3*5/(8*7) = 30/56; alpha = 1 - (1/2)/(30/56) = 1 - 28/30
    assert stats.krippendorff_alpha == pytest.approx(1 - 28 / 30, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_the_report_agrees_with_statsmodels_and_krippendorff(seed):
    """Random batches of 2-4 raters per item out of 5, 3 categories: the libraries as oracle."""
    rng = np.random.default_rng(seed)
    raters = [f"w{r}" for r in range(5)]
    items = []
    for _ in range(15):
        chosen = rng.choice(5, size=rng.integers(2, 5), replace=False)
        items.append([(raters[r], int(rng.integers(0, 3))) for r in sorted(chosen)])
    stats = dimension_stats(items)

    modal = max(set(map(len, items)), key=lambda m: (sum(len(i) == m for i in items), m))
    fixed = np.array([[c for _, c in item] for item in items if len(item) == modal])
    table, _ = aggregate_raters(fixed, n_cat=3)
    assert stats.fleiss_items == len(fixed)
    assert stats.fleiss_kappa == pytest.approx(statsmodels_fleiss(table), abs=1e-9)

    data = np.full((5, len(items)), np.nan)
    for column, item in enumerate(items):
        for rater, category in item:
            data[raters.index(rater), column] = category
    expected_alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert stats.krippendorff_alpha == pytest.approx(expected_alpha, abs=1e-9)
    for pair in stats.pairs:
        first, second = pair.raters
        both = [dict(item) for item in items if {first, second} <= dict(item).keys()]
        kappa = cohen_kappa_score([i[first] for i in both], [i[second] for i in both])
        assert pair.items == len(both)
        assert pair.cohen_kappa == (None if np.isnan(kappa) else pytest.approx(kappa, abs=1e-9))


@pytest.fixture
def annotated_batch(system):
    batch = make_batch(system, 1, redundancy_fraction=1.0, redundancy_count=3)
    for rater, answers in ANSWERS.items():
        annotate(arrive(batch.task, rater), answers)
    return batch


@pytest.mark.django_db
def test_admins_download_items_answers_and_statistics(client, annotated_batch):
    client.force_login(make_user("root", role="admin"))
    url = f"/annotation/api/batches/{annotated_batch.pk}/agreement/"
    report = client.get(url, {"as": "json"}).json()
    for dimension, expected in EXPECTED.items():
        assert scalars(report["statistics"][dimension]) == pytest.approx(expected, abs=1e-12)
    assert len(report["statistics"]["action"]["cohen_kappa_pairs"]) == 3
    assert [(i["turn"], i["listener_action"], len(i["answers"])) for i in report["items"]] == [
        (0, "select A", 3),
        (1, "select B", 3),
        (2, "select C", 3),
    ]
    assert sorted(a["action"] for a in report["items"][2]["answers"]) == [
        "select C",
        "select D",
        "select D",
    ]

    answers = list(csv.DictReader(io.StringIO(client.get(url, {"as": "csv"}).content.decode())))
    assert len(answers) == 9
    assert {r["worker"] for r in answers} == {a["worker"] for a in report["items"][0]["answers"]}
    assert all(len(r["worker"]) == 64 for r in answers)  # keyed hashes, never platform ids
    assert not {"w1", "w2", "w3"} & {r["worker"] for r in answers}
    assert sum(r["correct"] == "True" for r in answers) == 6

    statistics = client.get(url, {"as": "statistics.csv"})
    rows = list(csv.DictReader(io.StringIO(statistics.content.decode())))
    assert [(r["dimension"], r["statistic"], r["items"]) for r in rows[:3]] == [
        ("correctness", "percent_all_agree", "3"),
        ("correctness", "fleiss_kappa", "3"),
        ("correctness", "krippendorff_alpha", "3"),
    ]
    by_name = {(r["dimension"], r["statistic"]): r for r in rows if not r["raters"]}
    assert float(by_name[("action", "fleiss_kappa")]["value"]) == pytest.approx(5 / 14)
    assert float(by_name[("satisfaction", "krippendorff_alpha")]["value"]) == pytest.approx(3 / 8)
    pairs = [r for r in rows if r["statistic"] == "cohen_kappa"]
    assert len(rows) == 3 * 3 + len(pairs) and len(pairs) == 3 * 3
    assert statistics["Content-Disposition"].endswith('statistics.csv"')
    assert client.get(url, {"as": "xml"}).status_code == 400


@pytest.mark.django_db
def test_single_annotations_are_not_agreement_items(client, system):
    batch = make_batch(system, 1)
    session = arrive(batch.task, "alone")
    assignment = claim_next(session)
    submit_answer(session, {"assignment": assignment.pk, "turn": 0, "phase": 1, "action": ""})
    client.force_login(make_user("root", role="admin"))
    report = client.get(f"/annotation/api/batches/{batch.pk}/agreement/").json()
    assert report["items"] == []
    assert report["statistics"]["action"]["items"] == 0
