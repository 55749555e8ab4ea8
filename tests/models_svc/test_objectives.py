"""The pure loss functions of the three learning objectives (FFT, RL, KTO) and negative subsampling.

FFT is checked against torch's label-smoothed cross-entropy, KTO against TRL's ``KTOTrainer`` loss,
the constrained probability and the RL weights against hand computations.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from models_svc.training.objectives import (
    REWARDS,
    constrained_log_prob,
    fft_loss,
    kto_losses,
    reward_for,
    rl_coefficient,
    rl_loss,
    subsample_negatives,
    target_token_terms,
)

pytestmark = pytest.mark.ml


# FFT: target-token terms and the label-smoothed loss


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3, 1.0])
def test_fft_loss_is_torch_label_smoothed_cross_entropy(epsilon):
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(6, 11, generator=generator) * 3
    targets = torch.randint(0, 11, (6,), generator=generator)
    log_prob, smoothing = target_token_terms(logits, targets)
    expected = F.cross_entropy(logits, targets, label_smoothing=epsilon)
    torch.testing.assert_close(fft_loss(log_prob, 6, smoothing, epsilon), expected)


def test_target_token_terms_by_definition():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    targets = torch.tensor([1, 0])
    log_prob, smoothing = target_token_terms(logits, targets)

    def log_softmax(row):
        total = math.log(sum(math.exp(value) for value in row))
        return [value - total for value in row]

    rows = [log_softmax([1.0, 2.0, 0.5]), log_softmax([0.0, -1.0, 3.0])]
    assert log_prob.item() == pytest.approx(rows[0][1] + rows[1][0], rel=1e-6)
    assert smoothing.item() == pytest.approx(-(sum(rows[0]) + sum(rows[1])) / 6, rel=1e-6)


def test_fft_loss_elementwise_over_examples_of_different_lengths():
    generator = torch.Generator().manual_seed(3)
    examples = [
        (torch.randn(length, 9, generator=generator), torch.randint(0, 9, (length,)))
        for length in (2, 5, 3)
    ]
    terms = [target_token_terms(logits, targets) for logits, targets in examples]
    log_probs = torch.stack([log_prob for log_prob, _ in terms])
    smoothings = torch.stack([smoothing for _, smoothing in terms])
    losses = fft_loss(log_probs, torch.tensor([2, 5, 3]), smoothings, 0.1)
    expected = torch.stack(
        [F.cross_entropy(logits, targets, label_smoothing=0.1) for logits, targets in examples]
    )
    assert losses.shape == (3,)
    torch.testing.assert_close(losses, expected)


def test_target_token_terms_compute_in_float32_and_carry_the_gradient():
    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(1)).bfloat16()
    logits.requires_grad_(True)
    targets = torch.tensor([0, 3, 6, 2])
    log_prob, smoothing = target_token_terms(logits, targets)
    assert log_prob.dtype == smoothing.dtype == torch.float32
    expected = F.cross_entropy(logits.detach().float(), targets, label_smoothing=0.2)
    torch.testing.assert_close(fft_loss(log_prob, 4, smoothing, 0.2), expected)
    fft_loss(log_prob, 4, smoothing, 0.2).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_target_token_terms_reject_mismatched_shapes():
    with pytest.raises(ValueError):
        target_token_terms(torch.zeros(3, 5), torch.zeros(4, dtype=torch.long))


# The constrained, temperature-scaled sampling distribution

LOGITS = [
    [1.0, 0.5, 2.0, -1.0, 0.0],
    [0.3, 1.2, -0.4, 2.2, 0.1],
    [-0.5, 0.7, 1.5, 0.2, 3.0],
]
ALLOWED = [[0, 2, 4], [1], [1, 3]]
TARGETS = [2, 1, 3]


def _hand_constrained_log_prob(temperature):
    total = 0.0
    for row, ids, target in zip(LOGITS, ALLOWED, TARGETS, strict=True):
        normaliser = math.log(sum(math.exp(row[token] / temperature) for token in ids))
        total += row[target] / temperature - normaliser
    return total


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_constrained_log_prob_by_hand(temperature):
    logits = torch.tensor(LOGITS)
    value = constrained_log_prob(logits, torch.tensor(TARGETS), ALLOWED, temperature)
    assert value.item() == pytest.approx(_hand_constrained_log_prob(temperature), rel=1e-6)


def test_constrained_log_prob_at_temperature_one_step_by_step():
    # step 1: 2.0 − log(e^1 + e^2 + e^0); step 2: a single allowed token contributes 0;
    # step 3: 0.2 − log(e^0.7 + e^0.2)
    step_one = 2.0 - math.log(math.e + math.e**2 + 1)
    step_three = 0.2 - math.log(math.exp(0.7) + math.exp(0.2))
    expected = step_one + 0.0 + step_three
    value = constrained_log_prob(torch.tensor(LOGITS), torch.tensor(TARGETS), ALLOWED)
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_constrained_log_prob_gradient_is_the_constrained_softmax_residual():
    temperature = 0.5
    logits = torch.tensor(LOGITS, requires_grad=True)
    constrained_log_prob(logits, torch.tensor(TARGETS), ALLOWED, temperature).backward()
    # d/d logit_v = (1[v = target] − softmax over the allowed tokens at τ) / τ, 0 if not allowed
    row = LOGITS[0]
    weights = {token: math.exp(row[token] / temperature) for token in ALLOWED[0]}
    total = sum(weights.values())
    expected_first = [
        ((token == 2) - weights[token] / total) / temperature if token in weights else 0.0
        for token in range(5)
    ]
    assert logits.grad[0].tolist() == pytest.approx(expected_first, abs=1e-6)
    assert logits.grad[1].tolist() == pytest.approx([0.0] * 5, abs=1e-7)
    assert logits.grad[2, [0, 2, 4]].tolist() == [0.0, 0.0, 0.0]
    assert logits.grad[2, 3].item() > 0 > logits.grad[2, 1].item()


def test_constrained_log_prob_rejects_a_target_outside_the_allowed_tokens():
    with pytest.raises(ValueError, match="step 1"):
        constrained_log_prob(torch.tensor(LOGITS), torch.tensor([2, 3, 3]), ALLOWED)


def test_constrained_log_prob_rejects_a_wrong_number_of_steps_or_temperature():
    with pytest.raises(ValueError):
        constrained_log_prob(torch.tensor(LOGITS), torch.tensor(TARGETS), ALLOWED[:2])
    with pytest.raises(ValueError):
        constrained_log_prob(torch.tensor(LOGITS), torch.tensor(TARGETS), ALLOWED, 0.0)


# RL: rewards, importance weight and loss


def test_rewards():
    assert REWARDS == {"positive": 1.0, "neutral": 0.0, "negative": -0.1}
    assert [reward_for(label) for label in ("positive", "neutral", "negative")] == [1.0, 0.0, -0.1]
    with pytest.raises(ValueError, match="'great'"):
        reward_for("great")


def test_rl_coefficient_on_negative_feedback_is_the_floored_capped_ratio():
    current = torch.tensor([math.log(0.05), math.log(0.05), math.log(0.05)])
    logged = torch.tensor([0.2, 0.001, 0.01])
    reward = torch.tensor([-0.1, -0.1, -0.1])
    # 0.05 / 0.2 = 0.25; 0.05 / max(0.001, 0.01) = 5 → capped; 0.05 / 0.01 = 5
    assert rl_coefficient(current, logged, reward).tolist() == pytest.approx([0.25, 1.0, 1.0])
    assert rl_coefficient(current, logged, reward, cap=10.0).tolist() == pytest.approx(
        [0.25, 5.0, 5.0]
    )
    assert rl_coefficient(current, logged, reward, floor=0.001, cap=100.0).tolist() == (
        pytest.approx([0.25, 50.0, 5.0])
    )


def test_rl_coefficient_is_one_for_non_negative_rewards():
    current = torch.tensor([math.log(0.9), math.log(0.9), math.log(0.05)])
    coefficient = rl_coefficient(current, 0.001, torch.tensor([1.0, 0.0, -0.1]), cap=100.0)
    assert coefficient.tolist() == pytest.approx([1.0, 1.0, 5.0])
    assert rl_coefficient(torch.tensor(math.log(0.05)), 0.2, 1.0).item() == 1.0
    assert rl_coefficient(torch.tensor(math.log(0.05)), 0.2, -0.1).item() == pytest.approx(0.25)


def test_rl_loss_by_hand():
    log_prob = torch.tensor([-3.0, -2.0, -1.5])
    tokens = torch.tensor([4, 5, 3])
    smoothing = torch.tensor([7.0, 6.0, 5.0])
    reward = torch.tensor([-0.1, 1.0, 0.0])
    coefficient = torch.tensor([0.25, 1.0, 1.0])
    losses = rl_loss(log_prob, tokens, smoothing, reward, coefficient, 0.1)
    expected = [
        0.9 * (-0.25 * -0.1 * -3.0 / 4) + 0.1 * 0.1 * 7.0,  # 0.053125
        0.9 * (-1.0 * 1.0 * -2.0 / 5) + 0.1 * 1.0 * 6.0,  # 0.96
        0.0,  # neutral feedback teaches nothing
    ]
    assert losses.tolist() == pytest.approx(expected)
    assert losses[0].item() == pytest.approx(0.053125)
    assert losses[1].item() == pytest.approx(0.96)


@pytest.mark.parametrize("epsilon", [0.0, 0.01, 0.1])
def test_an_rl_positive_example_takes_exactly_the_fft_loss(epsilon):
    # R = 1, c = 1: the (1 − ε) factor on the policy term makes RL's loss FFT's, as the paper's
    # label smoothing for every objective does.
    log_prob, smoothing = torch.tensor([-3.0, -0.5]), torch.tensor([7.0, 4.0])
    tokens = torch.tensor([4, 2])
    torch.testing.assert_close(
        rl_loss(log_prob, tokens, smoothing, 1.0, 1.0, epsilon),
        fft_loss(log_prob, tokens, smoothing, epsilon),
    )


def test_rl_coefficient_has_no_gradient():
    current = torch.tensor([math.log(0.05)], requires_grad=True)
    coefficient = rl_coefficient(current, torch.tensor([0.2]), torch.tensor([-0.1]))
    assert not coefficient.requires_grad
    log_prob = torch.tensor([-3.0], requires_grad=True)
    loss = rl_loss(log_prob, 4, torch.tensor([7.0]), -0.1, coefficient, 0.1).sum()
    loss.backward()
    assert current.grad is None
    # d loss / d log_prob = −(1 − ε)·c·R/T = −0.9 · 0.25 · (−0.1) / 4
    assert log_prob.grad.tolist() == pytest.approx([0.005625])


def test_rl_loss_treats_the_coefficient_as_a_constant():
    log_prob = torch.tensor(-3.0, requires_grad=True)
    coefficient = log_prob.exp() * 10  # a careless caller's coefficient that carries a gradient
    rl_loss(log_prob, 4, torch.tensor(7.0), -0.1, coefficient, 0.0).backward()
    assert log_prob.grad.item() == pytest.approx(-coefficient.item() * -0.1 / 4)


# KTO, against TRL


class _LogProbModel:
    """Stands in for a causal LM in TRL's loss: returns given sequence log-probabilities.

    Sequences have two tokens, so TRL's per-token log-probs are [B, 1] and sum to the given value;
    the KL sequences are told apart by their token ids (1 instead of 0).
    """

    training = True

    def __init__(self, completion_log_prob, kl_log_prob):
        self.completion_log_prob = completion_log_prob
        self.kl_log_prob = kl_log_prob

    def __call__(self, *, input_ids, **_):
        is_kl = bool(input_ids[0, 0] == 1)
        values = self.kl_log_prob if is_kl else self.completion_log_prob
        zeros = torch.zeros(len(values), 1)
        return SimpleNamespace(log_probs=values.unsqueeze(-1), entropy=zeros, mean_logits=zeros)


def _trl_kto_loss(policy, reference, desirable, kl_policy, kl_reference, **settings):
    """TRL's KTO loss (loss_type "kto") on these sequence log-probabilities."""
    from trl import KTOTrainer

    trainer = object.__new__(KTOTrainer)
    model = _LogProbModel(policy, kl_policy)
    vars(trainer).update(
        model=model,
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x),
        loss_type="kto",
        beta=settings["beta"],
        desirable_weight=settings["desirable_weight"],
        undesirable_weight=settings["undesirable_weight"],
        calculate_KL=True,
        precompute_ref_logps=True,
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    size = len(policy)
    ones = torch.ones(size, 2, dtype=torch.long)
    batch = {
        "input_ids": torch.zeros(size, 2, dtype=torch.long),
        "attention_mask": ones,
        "completion_mask": ones,
        "KL_input_ids": ones,
        "KL_attention_mask": ones,
        "KL_completion_mask": ones,
        "label": desirable,
        "ref_logps": reference,
        "ref_KL_logps": kl_reference,
    }
    loss = trainer._compute_loss(model, batch, return_outputs=False)
    return loss, trainer._metrics["train"]["kl"][-1]


def _kto_batch(kl_shift, size=6):
    """Sequence log-probabilities; the KL pairs' mean log-ratio is about ``kl_shift``."""
    generator = torch.Generator().manual_seed(11)

    def draw(scale=2.0):
        return torch.randn(size, generator=generator, dtype=torch.float64) * scale

    policy, reference, kl_reference = draw() - 5, draw() - 5, draw() - 5
    return policy, reference, kl_reference + draw(0.3) + kl_shift, kl_reference


KTO_SETTINGS = [
    {"beta": 0.5, "desirable_weight": 1.0, "undesirable_weight": 1.0},
    {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.33},
    {"beta": 2.0, "desirable_weight": 0.7, "undesirable_weight": 1.5},
]


@pytest.mark.parametrize("settings", KTO_SETTINGS)
@pytest.mark.parametrize(
    "desirable",
    [
        [True, False, True, True, False, False],
        [False, True, False, False, False, False],
        [True] * 6,
        [False] * 6,
    ],
)
@pytest.mark.parametrize("kl_shift", [0.8, 2.5, -1.0])
def test_kto_losses_match_trl(settings, desirable, kl_shift):
    policy, reference, kl_policy, kl_reference = _kto_batch(kl_shift)
    labels = torch.tensor(desirable)
    policy_ours = policy.clone().requires_grad_(True)
    policy_trl = policy.clone().requires_grad_(True)

    losses, z = kto_losses(policy_ours, reference, labels, kl_policy, kl_reference, **settings)
    trl_loss, trl_kl = _trl_kto_loss(
        policy_trl, reference, labels, kl_policy, kl_reference, **settings
    )

    assert losses.shape == (6,)
    assert (z.item() > 0) == (kl_shift > 0)  # a negative KL estimate clamps to z = 0
    torch.testing.assert_close(losses.mean(), trl_loss, rtol=1e-12, atol=1e-15)
    assert z.item() == pytest.approx(trl_kl, rel=1e-12, abs=1e-15)
    losses.mean().backward()
    trl_loss.backward()
    torch.testing.assert_close(policy_ours.grad, policy_trl.grad, rtol=1e-10, atol=1e-15)


def test_kto_z_and_losses_by_hand():
    policy = torch.tensor([-2.0, -4.0], requires_grad=True)
    reference = torch.tensor([-3.0, -3.5])
    kl_policy = torch.tensor([-5.0, -6.0], requires_grad=True)
    kl_reference = torch.tensor([-5.5, -6.1])
    losses, z = kto_losses(
        policy,
        reference,
        torch.tensor([True, False]),
        kl_policy,
        kl_reference,
        beta=0.5,
        desirable_weight=1.0,
        undesirable_weight=2.0,
    )
    assert z.item() == pytest.approx((0.5 + 0.1) / 2)  # mean of −5 − (−5.5) and −6 − (−6.1)
    assert not z.requires_grad

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    assert losses.tolist() == pytest.approx(
        [1 - sigmoid(0.5 * (1.0 - 0.3)), 2.0 * (1 - sigmoid(0.5 * (0.3 - -0.5)))]
    )
    losses.sum().backward()
    assert kl_policy.grad is None


def test_kto_z_clamps_a_negative_kl_estimate_to_zero():
    losses, z = kto_losses(
        torch.tensor([-2.0]),
        torch.tensor([-3.0]),
        torch.tensor([True]),
        torch.tensor([-7.0, -6.0]),
        torch.tensor([-5.0, -5.5]),
    )
    assert z.item() == 0.0
    assert losses.item() == pytest.approx(1 - 1 / (1 + math.exp(-0.5)))


def test_kto_losses_want_boolean_labels():
    values = torch.zeros(2)
    with pytest.raises(ValueError, match="boolean"):
        kto_losses(values, values, torch.tensor([1, 0]), values, values)


# Negative subsampling


def _labels(positive, negative, neutral):
    labels = ["positive"] * positive + ["negative"] * negative + ["neutral"] * neutral
    random.Random(0).shuffle(labels)
    return labels


def test_subsample_negatives_counts():
    labels = _labels(10, 30, 3)
    kept = subsample_negatives(labels, seed=1)
    assert kept == sorted(kept) and len(set(kept)) == len(kept)
    assert Counter(labels[index] for index in kept) == {"positive": 10, "negative": 8, "neutral": 3}
    non_negative = {index for index, label in enumerate(labels) if label != "negative"}
    assert non_negative <= set(kept)


def test_subsample_negatives_other_ratio_rounds():
    labels = _labels(7, 30, 0)
    kept = subsample_negatives(labels, positives=2, negatives=3, seed="round-1")
    assert Counter(labels[index] for index in kept) == {"positive": 7, "negative": 10}  # 10.5 → 10
    kept = subsample_negatives(_labels(3, 30, 0), positives=1, negatives=1, seed=0)
    assert len(kept) == 6
    labels = _labels(7, 20, 0)
    kept = subsample_negatives(labels, seed=0)
    assert Counter(labels[index] for index in kept) == {"positive": 7, "negative": 6}  # 5.6 → 6


def test_subsample_negatives_is_deterministic_in_the_seed():
    labels = _labels(10, 30, 3)
    assert subsample_negatives(labels, seed=5) == subsample_negatives(list(labels), seed=5)
    assert subsample_negatives(labels, seed="study-1/round-2") == subsample_negatives(
        labels, seed="study-1/round-2"
    )
    assert subsample_negatives(labels, seed=5) != subsample_negatives(labels, seed=6)


def test_subsample_negatives_keeps_all_when_negatives_are_few():
    labels = _labels(10, 8, 2)
    assert subsample_negatives(labels, seed=3) == list(range(20))
    assert subsample_negatives(_labels(10, 3, 0), seed=3) == list(range(13))
    assert subsample_negatives(["negative", "negative", "neutral"], seed=3) == [2]


def test_subsample_negatives_rejects_unknown_labels():
    with pytest.raises(ValueError, match="'bad'"):
        subsample_negatives(["positive", "bad"], seed=0)
