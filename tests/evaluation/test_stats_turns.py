"""Turn-level metrics and the similarity Sim(â, a*) with its edge cases (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.stats import interaction, turns

# Four images A-D; f(A,B) = 0.5, f(B,C) = 0.2, f(A,C) = 0.1, D is unlike everything.
SIM = np.array(
    [
        [1.0, 0.5, 0.1, 0.0],
        [0.5, 1.0, 0.2, 0.0],
        [0.1, 0.2, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def mask(letters: str) -> np.ndarray:
    return np.array(["ABCD"[i] in letters for i in range(4)])


def sim(pred_select="", pred_deselect="", gold_select="", gold_deselect="", matrix=SIM) -> float:
    return float(
        turns.action_similarity(
            mask(pred_select)[None],
            mask(pred_deselect)[None],
            mask(gold_select)[None],
            mask(gold_deselect)[None],
            matrix,
        )[0]
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ((("A", "", "A", "")), 1.0),
        ((("A", "", "B", "")), 0.5),
        ((("AB", "", "A", "")), (1.0 + 0.5) / 2),
        ((("AB", "", "AB", "")), (1.0 + 0.5 + 0.5 + 1.0) / 4),
        ((("B", "A", "C", "A")), (0.2 + 1.0) / 2),
        # exactly one select set empty: −max(|p̂|, |p*|) over max(...)
        ((("", "", "AB", "")), -2 / 2),
        ((("AB", "", "", "")), -2 / 2),
        ((("A", "", "", "C")), (-1 - 1) / (1 + 1)),
        ((("A", "C", "B", "")), (0.5 - 1) / (1 + 1)),
        ((("AC", "", "B", "D")), (0.5 + 0.2 - 1) / (2 + 1)),
        # both actions empty: identical
        ((("", "", "", "")), 1.0),
    ],
)
def test_similarity_by_hand(case, expected):
    assert sim(*case) == pytest.approx(expected, abs=1e-15)


def test_identity_similarity_counts_shared_images():
    identity = np.eye(4)
    assert sim("AB", "", "AB", "", identity) == 2 / 4
    assert sim("A", "", "B", "", identity) == 0.0


def test_per_item_similarity_matrices_equal_a_shared_one():
    rng = np.random.default_rng(3)
    n = 50
    masks = [rng.random((n, 4)) < 0.4 for _ in range(4)]
    shared = turns.action_similarity(*masks, SIM)
    per_item = turns.action_similarity(*masks, np.repeat(SIM[None], n, 0))
    assert np.array_equal(shared, per_item)
    one_by_one = [turns.action_similarity(*(m[i : i + 1] for m in masks), SIM)[0] for i in range(n)]
    assert np.allclose(shared, one_by_one, atol=0, rtol=1e-15)


def test_exact_match_positive_feedback_and_negative_similarity_with_weights():
    matches = np.array([True, False, True, True])
    satisfaction = np.array(["yes", "no", "yes_wrong", ""], dtype=object)
    weights = np.array([1.0, 0.5, 0.5, 1.0])  # the middle two annotate one turn
    sims = np.array([1.0, -1.0, 0.5, 0.25])
    assert turns.exact_match_rate(matches) == 3 / 4
    assert turns.exact_match_rate(matches, weights) == (1 + 0.5 + 1) / 3
    # "" (last turn, no follow-up) is not in the denominator
    assert turns.positive_feedback_rate(satisfaction) == 2 / 3
    assert turns.positive_feedback_rate(satisfaction, weights) == 1.5 / 2
    assert turns.mean_similarity(sims) == (1 - 1 + 0.5 + 0.25) / 4
    negative = satisfaction == "no"
    assert turns.negative_feedback_similarity(sims, negative) == -1.0
    assert np.isnan(turns.negative_feedback_similarity(sims, np.zeros(4, bool)))


def test_actions_equal():
    assert turns.actions_equal(mask("A"), mask("B"), mask("A"), mask("B"))
    assert not turns.actions_equal(mask("A"), mask(""), mask("A"), mask("B"))


def test_click_counts_by_hand():
    targets = mask("AB")
    # select A (correct) and C (wrong); then deselect C (correct) and A (wrong), select D (wrong)
    before = np.array([mask(""), mask("AC")])
    after = np.array([mask("AC"), mask("D")])
    clicks, correct = interaction.click_counts(before, after, targets)
    assert clicks.tolist() == [2, 3]
    assert correct.tolist() == [1, 1]
    assert interaction.click_accuracy(before, after, targets) == 2 / 5
    assert np.isnan(interaction.click_accuracy(before[:0], after[:0], targets))
