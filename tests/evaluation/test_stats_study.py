"""The study engine against independent computations (plain Python, scipy, sklearn, …)."""

from __future__ import annotations

import json
import threading
import warnings

import krippendorff
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from evaluation.stats import inputs
from evaluation.stats import study as engine

K = 6
SATISFACTION = ["yes", "yes_incomplete", "yes_wrong", "no"]


def random_group(seed: int, round_index: int = 1, system: str = "B-FFT", games: int = 30):
    rng = np.random.default_rng(seed)
    turns_per_game = rng.integers(1, 6, games)
    turn_game = np.repeat(np.arange(games), turns_per_game)
    m = turn_game.size
    before = np.zeros((m, K), bool)
    after = np.zeros((m, K), bool)
    for t in range(m):
        if t and turn_game[t] == turn_game[t - 1]:
            before[t] = after[t - 1]
        after[t] = before[t] ^ (rng.random(K) < 0.3)
    last = np.r_[turn_game[1:] != turn_game[:-1], True]
    annotated = rng.choice(m, m // 2, replace=False)
    triple = annotated[:8]
    ann_turn = np.concatenate([annotated, triple, triple])
    a = ann_turn.size
    copy = rng.random(a) < 0.5
    select = np.where(copy[:, None], after[ann_turn] & ~before[ann_turn], rng.random((a, K)) < 0.2)
    deselect = np.where(copy[:, None], before[ann_turn] & ~after[ann_turn], False)
    satisfaction = rng.choice(np.array(SATISFACTION, dtype=object), a)
    satisfaction[last[ann_turn]] = ""
    raters = np.array([f"r{i}" for i in range(6)], dtype=object)
    rater = rng.choice(raters, a)
    for i in range(triple.size):
        rater[[i, annotated.size + i, annotated.size + triple.size + i]] = rng.choice(
            raters, 3, replace=False
        )
    labelled = np.flatnonzero(~last)
    labels = {
        "binary": inputs.LabelInput(
            labelled,
            rng.choice(
                np.array(["positive", "negative", "unparseable"], object),
                labelled.size,
                p=[0.5, 0.45, 0.05],
            ),
            "lexicon",
        ),
        "ternary": inputs.LabelInput(
            labelled,
            rng.choice(np.array(["positive", "neutral", "negative"], object), labelled.size),
            "lexicon",
        ),
    }
    return inputs.GroupInput(
        round_index=round_index,
        system=system,
        successful=rng.random(games) < 0.6,
        targets=rng.random((games, K)) < 0.4,
        context=np.array([rng.choice(20, K, replace=False) for _ in range(games)]),
        turn_game=turn_game,
        before=before,
        after=after,
        utterances=[
            " ".join(rng.choice(["go", "try again", "no", "left", "reset"], 3)) for _ in range(m)
        ],
        annotations=inputs.AnnotationInput(ann_turn, rater, select, deselect, satisfaction),
        labels=labels,
    )


def similarity_matrix(seed: int = 0, size: int = 20) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(size, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors @ vectors.T


def study_of(*groups, similarity=None):
    label = inputs.EMBEDDING_SIMILARITY if similarity is not None else inputs.IDENTITY_SIMILARITY
    return inputs.StudyInput("s", list(groups), [f"t{i}" for i in range(20)], similarity, label)


def naive_turn_level(group, similarity):
    """Turn-level metrics by plain Python loops (each annotated turn weighs 1)."""
    ann = group.annotations
    per_turn: dict[int, list[int]] = {}
    for i, turn in enumerate(ann.turn):
        per_turn.setdefault(int(turn), []).append(i)
    em = pf_num = pf_den = sim_sum = neg_sum = neg_w = 0.0
    for turn, rows in per_turn.items():
        w = 1 / len(rows)
        game = group.turn_game[turn]
        context = group.context[game]
        for i in rows:
            p_sel = set(np.flatnonzero(group.after[turn] & ~group.before[turn]))
            p_des = set(np.flatnonzero(group.before[turn] & ~group.after[turn]))
            g_sel = set(np.flatnonzero(ann.select[i]))
            g_des = set(np.flatnonzero(ann.deselect[i]))
            em += w * (p_sel == g_sel and p_des == g_des)
            if ann.satisfaction[i]:
                pf_den += w
                pf_num += w * ann.satisfaction[i].startswith("yes")
            total = den = 0.0
            for pred, gold in ((p_sel, g_sel), (p_des, g_des)):
                if pred and gold:
                    total += sum(similarity[context[x], context[y]] for x in pred for y in gold)
                    den += len(pred) * len(gold)
                elif pred or gold:
                    total -= max(len(pred), len(gold))
                    den += max(len(pred), len(gold))
            value = total / den if den else 1.0
            sim_sum += w * value
            if ann.satisfaction[i] == "no":
                neg_sum += w * value
                neg_w += w
    count = len(per_turn)
    return {
        "exact_match": em / count,
        "positive_feedback": pf_num / pf_den,
        "sim": sim_sum / count,
        "sim_neg_fb": neg_sum / neg_w,
    }


@pytest.mark.parametrize("with_embeddings", [False, True])
def test_turn_level_values_equal_a_naive_computation(with_embeddings):
    group = random_group(1)
    matrix = similarity_matrix() if with_embeddings else None
    result = engine.compute_study(
        study_of(group, similarity=matrix), inputs.MetricParameters(resamples=200)
    )
    row = result["rows"][0]
    expected = naive_turn_level(group, matrix if with_embeddings else np.eye(20))
    for name, value in expected.items():
        assert row[name]["value"] == pytest.approx(value, abs=1e-12), name
    assert row["annotated_turns"] == np.unique(group.annotations.turn).size
    assert row["similarity"] == (
        inputs.EMBEDDING_SIMILARITY if with_embeddings else inputs.IDENTITY_SIMILARITY
    )


def test_intervals_equal_scipy_bootstrap_over_games():
    """With scipy's draws, each metric's interval equals scipy.stats.bootstrap resampling games."""
    group = random_group(2)
    params = inputs.MetricParameters(resamples=999, seed=5, sampler="scipy")
    row = engine.compute_study(study_of(group), params)["rows"][0]
    games = group.n_games
    turns = np.bincount(group.turn_game, minlength=games)
    ann = group.annotations
    weight = 1 / np.bincount(ann.turn)[ann.turn]
    match = np.all(
        (ann.select == (group.after & ~group.before)[ann.turn])
        & (ann.deselect == (group.before & ~group.after)[ann.turn]),
        axis=1,
    )
    ann_game = group.turn_game[ann.turn]
    cases = {
        "success_rate": (group.successful.astype(float), np.ones(games)),
        "turns_per_game": (turns.astype(float), np.ones(games)),
        "exact_match": (
            np.bincount(ann_game, weight * match, games),
            np.bincount(ann_game, weight, games),
        ),
    }
    for name, (numerator, denominator) in cases.items():
        result = stats.bootstrap(
            (numerator, denominator),
            lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=999,
            method="BCa",
            rng=engine.group_rng(5, group.round_index, group.system),
        )
        assert row[name]["value"] == pytest.approx(numerator.sum() / denominator.sum(), abs=1e-15)
        assert row[name]["ci"] == pytest.approx(
            [result.confidence_interval.low, result.confidence_interval.high], rel=1e-9
        ), name


def test_decoder_blocks_equal_sklearn():
    group = random_group(3)
    row = engine.compute_study(study_of(group), inputs.MetricParameters(resamples=200))["rows"][0]
    ann = group.annotations
    weight = 1 / np.bincount(ann.turn)[ann.turn]
    for kind, classes in (
        ("binary", ["positive", "negative"]),
        ("ternary", ["positive", "neutral", "negative"]),
    ):
        labels = group.labels[kind]
        label_of = dict(zip(labels.turn.tolist(), labels.label, strict=True))
        mapping = {
            "yes": "positive",
            "yes_incomplete": "neutral",
            "yes_wrong": "neutral",
            "no": "negative",
        }
        if kind == "binary":
            mapping = {k: ("positive" if v == "neutral" else v) for k, v in mapping.items()}
        ref, pred, w = [], [], []
        for i, turn in enumerate(ann.turn.tolist()):
            if turn in label_of and ann.satisfaction[i]:
                ref.append(mapping[ann.satisfaction[i]])
                pred.append(label_of[turn])
                w.append(weight[i])
        block = row["decoder"][kind]
        labels = [*classes, "unparseable"]
        expected = sk_confusion(ref, pred, labels=labels, sample_weight=w)[: len(classes)]
        assert np.allclose(block["confusion"], expected, atol=1e-4)
        assert block["items"] == pytest.approx(sum(w), abs=1e-4)
        precision, recall, f1, _ = precision_recall_fscore_support(
            ref, pred, labels=classes, sample_weight=w, zero_division=np.nan
        )
        for i, name in enumerate(classes):
            assert block["precision"][name]["value"] == pytest.approx(precision[i], abs=1e-12)
            assert block["recall"][name]["value"] == pytest.approx(recall[i], abs=1e-12)
            assert block["f1"][name]["value"] == pytest.approx(f1[i], abs=1e-12)
        assert block["decoder"] == "lexicon"


def test_agreement_row_equals_reference_libraries():
    group = random_group(4)
    result = engine.compute_study(study_of(group), inputs.MetricParameters(resamples=200))
    (row,) = result["agreement"]
    ann = group.annotations
    multi = np.bincount(ann.turn)[ann.turn] >= 2
    items = np.unique(ann.turn[multi])
    assert row["items"] == items.size == 8
    satisfaction_items = [t for t in items if all(ann.satisfaction[ann.turn == t])]
    rater_names = sorted(set(ann.rater[multi]))
    data = np.full((len(rater_names), len(satisfaction_items)), np.nan)
    codes = {v: i for i, v in enumerate(SATISFACTION)}
    for j, turn in enumerate(satisfaction_items):
        for i in np.flatnonzero(ann.turn == turn):
            data[rater_names.index(ann.rater[i]), j] = codes[ann.satisfaction[i]]
    part = row["satisfaction"]
    assert part["items"] == len(satisfaction_items)
    unanimous = [len(set(data[:, j][~np.isnan(data[:, j])])) == 1 for j in range(data.shape[1])]
    assert part["percent"]["value"] == pytest.approx(np.mean(unanimous), abs=1e-15)
    if len(np.unique(data[~np.isnan(data)])) > 1:
        assert part["krippendorff_alpha"]["value"] == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-9
        )
    table = np.stack(
        [
            np.bincount(data[:, j][~np.isnan(data[:, j])].astype(int), minlength=4)
            for j in range(data.shape[1])
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_kappa = statsmodels_fleiss(table)
    if np.isfinite(expected_kappa):
        assert part["fleiss_kappa"]["value"] == pytest.approx(expected_kappa, abs=1e-9)
    for pair in part["pairs"]:
        assert pair["first"] < pair["second"]
        assert pair["items"] >= 1


def test_idempotent_and_independent_of_other_groups():
    first = random_group(5, round_index=1, system="B-FFT")
    second = random_group(6, round_index=2, system="T-RL")
    params = inputs.MetricParameters(resamples=300, seed=11)
    alone = engine.compute_study(study_of(first), params)
    again = engine.compute_study(study_of(first), params)
    together = engine.compute_study(study_of(second, first), params)
    assert json.dumps(alone, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert together["rows"][0] == alone["rows"][0]  # sorted by round: first comes first
    other_seed = engine.compute_study(study_of(first), inputs.MetricParameters(300, seed=12))
    assert (
        other_seed["rows"][0]["success_rate"]["value"] == alone["rows"][0]["success_rate"]["value"]
    )
    assert other_seed["rows"][0]["success_rate"]["ci"] != alone["rows"][0]["success_rate"]["ci"]


def test_rows_come_in_round_then_paper_order_and_report_progress():
    groups = [
        random_group(i, round_index=r, system=s, games=5)
        for i, (r, s) in enumerate(
            [(1, "HH"), (1, "CONTROL"), (0, "T-RL"), (1, "B-FFT"), (1, "Z-NEW"), (0, "B-FFT")]
        )
    ]
    seen = []
    result = engine.compute_study(
        study_of(*groups),
        inputs.MetricParameters(resamples=50),
        progress=lambda fraction, message: seen.append((fraction, message)),
        workers=1,
    )
    assert [(r["round"], r["system"]) for r in result["rows"]] == [
        (0, "B-FFT"),
        (0, "T-RL"),
        (1, "B-FFT"),
        (1, "Z-NEW"),
        (1, "CONTROL"),
        (1, "HH"),
    ]
    assert [f for f, _ in seen] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert seen[0][1] == "round 0 · B-FFT: 5 games"
    json.dumps(result, allow_nan=False)


def test_threads_do_not_change_the_numbers():
    groups = [random_group(i, round_index=i % 3, system=f"S{i}", games=15) for i in range(6)]
    params = inputs.MetricParameters(resamples=300, seed=2)
    alone = engine.compute_study(study_of(*groups), params, workers=1)
    callers = []
    threaded = engine.compute_study(
        study_of(*groups),
        params,
        progress=lambda fraction, _: callers.append((fraction, threading.get_ident())),
        workers=3,
    )
    assert json.dumps(alone, sort_keys=True) == json.dumps(threaded, sort_keys=True)
    # progress comes from the calling thread (it may write to the database), in order
    assert [c[1] for c in callers] == [threading.get_ident()] * 6
    assert [c[0] for c in callers] == pytest.approx([i / 6 for i in range(1, 7)])


def test_parameters_are_validated():
    for bad in (
        inputs.MetricParameters(resamples=0),
        inputs.MetricParameters(seed=-1),
        inputs.MetricParameters(confidence=1.0),
        inputs.MetricParameters(method="basic"),
        inputs.MetricParameters(satisfaction_classes={"yes": "great"}),
        inputs.MetricParameters(sampler="slow"),
    ):
        with pytest.raises(ValueError):
            bad.validated()
