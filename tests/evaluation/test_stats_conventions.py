"""The paper's metric conventions beside the platform's, in the pure statistics, by hand.

One hand-made group (arrays, no ORM) is computed under both conventions; every expected value
is worked out in the comments. Percentile intervals are checked against ``numpy.percentile`` of
the same bootstrap replicates (drawn here as scipy draws them) and ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy import stats

from evaluation.stats import columns, inputs, language, turns
from evaluation.stats import conventions as conv
from evaluation.stats import study as engine
from evaluation.stats.decoder import DEFAULT_SATISFACTION_CLASSES

PLATFORM, PAPER = conv.PLATFORM, conv.PAPER


def test_two_named_frozen_conventions():
    assert conv.conventions_named("platform") is PLATFORM
    assert conv.conventions_named("paper") is PAPER
    assert conv.NAMES == ("platform", "paper")
    assert PLATFORM.positive_answers == turns.SATISFIED
    assert (PLATFORM.interval, PAPER.interval) == ("bca", "percentile")
    assert PAPER.positive_answers == ("yes",)
    assert (PAPER.tokens, PAPER.length_per) == (conv.ALPHANUMERIC, conv.PER_TURN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER.interval = "bca"  # type: ignore[misc]
    with pytest.raises(ValueError, match="conventions must be one of"):
        conv.conventions_named("mine")
    with pytest.raises(ValueError, match="interval"):
        dataclasses.replace(PAPER, interval="basic")
    with pytest.raises(ValueError, match="positive answers"):
        dataclasses.replace(PAPER, positive_answers=("maybe",))


def test_parameters_take_the_conventions_interval_unless_they_name_one():
    assert inputs.MetricParameters().validated().method == "bca"
    assert inputs.MetricParameters(conventions=PAPER).validated().method == "percentile"
    mixed = inputs.MetricParameters(method="bca", conventions=PAPER).validated()
    assert mixed.method == "bca" and mixed.as_dict()["conventions"] == "paper"
    assert inputs.MetricParameters().validated().as_dict()["conventions"] == "platform"
    with pytest.raises(ValueError):
        inputs.MetricParameters(conventions="paper").validated()  # a name is not a Conventions


# Satisfaction answers of five annotations; weights: the middle two share one turn (1/2 each).
SATISFACTION = np.array(["yes", "no", "yes_wrong", "yes_incomplete", ""], dtype=object)
WEIGHTS = np.array([1.0, 0.5, 0.5, 1.0, 1.0])
SIMS = np.array([1.0, 0.0, 1.0, 1.0, 0.0])


def test_positive_feedback_any_yes_or_a_plain_yes():
    # answered: the first four (weights 1 + ½ + ½ + 1 = 3); "" is the last turn: no answer
    # platform, any yes: 1 + ½ (yes_wrong) + 1 (yes_incomplete) = 2.5 → 2.5 / 3 = 5/6
    assert turns.positive_feedback_rate(SATISFACTION, WEIGHTS) == pytest.approx(5 / 6)
    # paper, a plain yes: 1 → 1/3
    assert turns.positive_feedback_rate(
        SATISFACTION, WEIGHTS, PAPER.positive_answers
    ) == pytest.approx(1 / 3)


def test_sim_neg_fb_negative_feedback_or_anything_but_a_plain_yes():
    mapping = DEFAULT_SATISFACTION_CLASSES
    platform = columns.sim_neg_fb_answers(SATISFACTION, PLATFORM, mapping)
    paper = columns.sim_neg_fb_answers(SATISFACTION, PAPER, mapping)
    assert platform.tolist() == [False, True, False, False, False]  # "no" only
    assert paper.tolist() == [False, True, True, True, False]  # answered, not "yes"
    # platform: the "no" answer, Sim 0 → 0
    assert turns.negative_feedback_similarity(SIMS, platform, WEIGHTS) == 0.0
    # paper: (½·0 + ½·1 + 1·1) / (½ + ½ + 1) = 1.5 / 2 = 0.75
    assert turns.negative_feedback_similarity(SIMS, paper, WEIGHTS) == 0.75


UTTERANCES = ["Pick the bird's wing!", "ok...ok", "2nd-left one", "", "no, the DOG"]


def test_whitespace_words_or_alphanumeric_tokens():
    # whitespace: Pick|the|bird's|wing! · ok...ok · 2nd-left|one · (none) · no,|the|DOG
    assert language.utterance_lengths(UTTERANCES).tolist() == [4, 1, 2, 0, 3]
    # [a-z0-9]+ of the lower case: pick|the|bird|s|wing · ok|ok · 2nd|left|one · · no|the|dog
    alnum = language.utterance_lengths(UTTERANCES, conv.ALPHANUMERIC)
    assert alnum.tolist() == [5, 2, 3, 0, 3]
    assert alnum.tolist() == [len(re.findall(r"[a-z0-9]+", u.lower())) for u in UTTERANCES]
    # platform vocabulary: punctuation stripped around words, inner kept:
    # pick the bird's wing ok...ok 2nd-left one no dog = 9
    assert language.vocabulary(UTTERANCES) == {
        "pick", "the", "bird's", "wing", "ok...ok", "2nd-left", "one", "no", "dog"
    }  # fmt: skip
    # paper vocabulary: pick the bird s wing ok 2nd left one no dog = 11
    assert language.vocabulary_size(UTTERANCES, conv.ALPHANUMERIC) == 11
    assert language.vocabulary(UTTERANCES, conv.ALPHANUMERIC) == {
        t for u in UTTERANCES for t in re.findall(r"[a-z0-9]+", u.lower())
    }
    with pytest.raises(ValueError, match="tokens must be one of"):
        language.vocabulary(UTTERANCES, "spaces")


K = 10  # images per context; the hand-made group uses images 0 (A), 1 (B) and 2 (C)


def masks(*letters: str) -> np.ndarray:
    return np.array([[chr(65 + i) in word for i in range(K)] for word in letters], dtype=bool)


def hand_group() -> inputs.GroupInput:
    """Two games. Game 0: select A, then select B. Game 1: select C, deselect C, select B; one
    of its turns has no text. Five annotated turns (game 1's first by two annotators)."""
    return inputs.GroupInput(
        round_index=1,
        system="B-FFT",
        successful=np.array([True, False]),
        targets=masks("AB", "AB"),
        context=np.arange(2 * K).reshape(2, K),
        turn_game=np.array([0, 0, 1, 1, 1]),
        before=masks("", "A", "", "C", ""),
        after=masks("A", "AB", "C", "", "B"),
        utterances=UTTERANCES,
        annotations=inputs.AnnotationInput(
            turn=np.array([0, 1, 2, 2, 3, 4]),
            rater=np.array(["al", "al", "al", "bo", "bo", "al"], dtype=object),
            select=masks("A", "B", "B", "C", "", "A"),
            deselect=masks("", "", "", "", "C", ""),
            satisfaction=np.array(["yes", "", "no", "yes_wrong", "yes_incomplete", ""], object),
        ),
    )


def compute(conventions: conv.Conventions) -> dict:
    study = inputs.StudyInput("hand", [hand_group()])
    params = inputs.MetricParameters(resamples=500, seed=1, conventions=conventions)
    return engine.compute_study(study, params)


def test_the_engine_under_both_conventions_by_hand():
    platform, paper = compute(PLATFORM), compute(PAPER)
    assert platform["parameters"]["conventions"] == "platform"
    assert paper["parameters"]["conventions"] == "paper"
    assert (platform["parameters"]["method"], paper["parameters"]["method"]) == (
        "bca",
        "percentile",
    )
    (p,), (q,) = platform["rows"], paper["rows"]
    # Sim per annotation (identity similarity): turn 0 A=A → 1; turn 1 B=B → 1; turn 2 model C
    # vs al's B → 0, vs bo's C → 1; turn 3 deselect C = deselect C → 1; turn 4 B vs A → 0.
    # Answered: turn 0 yes (1), turn 2 no (½) and yes_wrong (½), turn 3 yes_incomplete (1).
    assert p["positive_feedback"]["value"] == pytest.approx(2.5 / 3)  # any yes
    assert q["positive_feedback"]["value"] == pytest.approx(1 / 3)  # plain yes
    assert p["sim_neg_fb"]["value"] == 0.0  # the "no": 0
    assert q["sim_neg_fb"]["value"] == pytest.approx(0.75)  # (½·0 + ½·1 + 1) / 2
    assert p["negative_feedback_turns"] == 0.5 and q["negative_feedback_turns"] == 2
    # Language: platform 4 + 1 + 2 + 3 = 10 words over 4 non-empty utterances = 2.5;
    # paper 5 + 2 + 3 + 0 + 3 = 13 tokens over 5 turns = 2.6.
    assert p["utterance_length"]["value"] == 2.5 and q["utterance_length"]["value"] == 2.6
    assert (p["vocabulary_size"], q["vocabulary_size"]) == (9, 11)
    # unchanged by the conventions: Sim (1 + 1 + ½ + 1 + 0) / 5 = 0.7, exact match the same,
    # success rate ½, phrases, utterance count
    for key in ("sim", "exact_match", "success_rate", "click_accuracy"):
        assert p[key]["value"] == q[key]["value"], key
    assert p["sim"]["value"] == pytest.approx(0.7) and p["exact_match"]["value"] == 0.7
    assert p["utterances"] == q["utterances"] == 4


def random_group(seed: int, games: int = 14) -> inputs.GroupInput:
    rng = np.random.default_rng(seed)
    turn_game = np.repeat(np.arange(games), rng.integers(1, 5, games))
    m = turn_game.size
    after = rng.random((m, K)) < 0.3
    before = np.zeros((m, K), bool)
    for t in range(1, m):
        if turn_game[t] == turn_game[t - 1]:
            before[t] = after[t - 1]
    words = ["Pick", "the", "bird's", "ok...", "2nd-left", "", "no,", "DOG!"]
    utterances = [" ".join(rng.choice(words, rng.integers(0, 4))) for _ in range(m)]
    annotated = np.arange(m)
    return inputs.GroupInput(
        round_index=2,
        system="T-RL",
        successful=rng.random(games) < 0.5,
        targets=rng.random((games, K)) < 0.3,
        context=np.arange(games * K).reshape(games, K),
        turn_game=turn_game,
        before=before,
        after=after,
        utterances=utterances,
        annotations=inputs.AnnotationInput(
            turn=annotated,
            rater=np.array(["r"] * m, dtype=object),
            select=rng.random((m, K)) < 0.2,
            deselect=np.zeros((m, K), bool),
            satisfaction=rng.choice(np.array(["yes", "yes_wrong", "no", ""], object), m),
        ),
    )


def test_paper_intervals_are_percentiles_of_the_same_bootstrap_replicates():
    group = random_group(7)
    resamples, seed = 1999, 13
    params = inputs.MetricParameters(
        resamples=resamples, seed=seed, sampler="scipy", conventions=PAPER
    )
    (row,) = engine.compute_study(inputs.StudyInput("s", [group]), params)["rows"]
    platform = engine.compute_study(
        inputs.StudyInput("s", [group]), dataclasses.replace(params, conventions=PLATFORM)
    )["rows"][0]

    # The replicates, independently: scipy's draws from the group's generator, then per game sums.
    n = group.n_games
    indices = engine.group_rng(seed, group.round_index, group.system).integers(0, n, (resamples, n))
    tokens = np.array([len(re.findall(r"[a-z0-9]+", u.lower())) for u in group.utterances])
    per_game = {
        "success_rate": (group.successful.astype(float), np.ones(n)),
        # the paper's utterance length: alphanumeric tokens / turns
        "utterance_length": (
            np.bincount(group.turn_game, tokens, n),
            np.bincount(group.turn_game, minlength=n).astype(float),
        ),
        # the paper's positive feedback: plain yes / answered (one annotation per turn)
        "positive_feedback": (
            np.bincount(group.turn_game, group.annotations.satisfaction == "yes", n),
            np.bincount(group.turn_game, group.annotations.satisfaction != "", n),
        ),
    }
    for name, (numerator, denominator) in per_game.items():
        assert denominator[indices].sum(axis=1).min() > 0  # every replicate is defined
        replicates = numerator[indices].sum(axis=1) / denominator[indices].sum(axis=1)
        assert row[name]["value"] == pytest.approx(numerator.sum() / denominator.sum(), abs=1e-15)
        expected = np.percentile(replicates, [2.5, 97.5])
        assert row[name]["ci"] == pytest.approx(expected.tolist(), rel=1e-12), name
        scipy_percentile = scipy_interval(numerator, denominator, "percentile", params)
        assert row[name]["ci"] == pytest.approx(scipy_percentile, rel=1e-12), name
    # A statistic both conventions define alike (click accuracy): percentile under the paper's,
    # BCa (as scipy's) under the platform's.
    selected, deselected = group.after & ~group.before, group.before & ~group.after
    targets = group.targets[group.turn_game]
    clicks = selected.sum(axis=1) + deselected.sum(axis=1)
    correct = (selected & targets).sum(axis=1) + (deselected & ~targets).sum(axis=1)
    numerator = np.bincount(group.turn_game, correct, n)
    denominator = np.bincount(group.turn_game, clicks, n)
    replicates = numerator[indices].sum(axis=1) / denominator[indices].sum(axis=1)
    percentile = np.percentile(replicates, [2.5, 97.5]).tolist()
    assert row["click_accuracy"]["ci"] == pytest.approx(percentile, rel=1e-12)
    bca = scipy_interval(numerator, denominator, "BCa", params)
    assert platform["click_accuracy"]["ci"] == pytest.approx(bca, rel=1e-9)
    assert platform["click_accuracy"]["ci"] != pytest.approx(percentile, rel=1e-6)


def scipy_interval(numerator, denominator, method: str, params) -> list[float]:
    """``scipy.stats.bootstrap`` of Σ numerator / Σ denominator over games."""
    interval = stats.bootstrap(
        (numerator, denominator),
        lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=params.resamples,
        method=method,
        rng=engine.group_rng(params.seed, 2, "T-RL"),
    ).confidence_interval
    return [interval.low, interval.high]
