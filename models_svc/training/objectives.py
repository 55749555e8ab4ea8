"""The loss functions of the study's three learning objectives, on per-token log-probabilities.

Notation, per example: T target tokens (the action string's tokens plus the end-of-turn token),
log_prob = Σ_t log p(target_t) under the full softmax, ε the label-smoothing weight, and

    H̃ = (1/T) Σ_t −(1/V) Σ_v log p_t(v),

the uniform-distribution term of label smoothing (``target_token_terms`` computes both).

FFT, fine-tuning on the positively labelled actions:

    L_FFT = (1 − ε)·(−log_prob / T) + ε·H̃,

which is exactly ``torch.nn.functional.cross_entropy(logits, targets, label_smoothing=ε)`` averaged
over the example's tokens.

RL, a one-step policy gradient with rewards R = +1 / 0 / −0.1 for positive / neutral / negative
feedback:

    L_RL = (1 − ε)·(−c·R·log_prob / T) + ε·|R|·H̃,
    c = 1 if R ≥ 0, else min(π(a) / max(p_t, floor), cap),

where p_t is the probability the deployed policy logged when it sampled the action and π(a) is
the action's probability under the current policy's constrained, temperature-scaled sampling
distribution (``constrained_log_prob``). c is a capped importance weight on the negative
examples only (the cap is a recorded setting, 1 by default); it is a constant (no gradient).
For a positive example (R = 1, c = 1) L_RL is L_FFT: every objective takes label smoothing in
the same form, the policy term weighted by (1 − ε) (``smoothed``).

KTO (Ethayarajh et al. 2024, as TRL's ``KTOTrainer`` implements loss type "kto"), with
r_i = log π(y_i|x_i) − log π_ref(y_i|x_i) and the batch's KL estimate

    z = max(0, mean_j [log π(y'_j|x_j) − log π_ref(y'_j|x_j)])    (mismatched pairs, no gradient),
    L_i = λ_d·(1 − σ(β(r_i − z)))  for desirable examples,
    L_i = λ_u·(1 − σ(β(z − r_i)))  for undesirable examples,

to which the trainer adds label smoothing as for the others: (1 − ε)·L_i + ε·H̃.

Negative examples outnumber positive ones; ``subsample_negatives`` keeps the positive : negative
ratio of a training set at most 5 : 4 (by default) by dropping negatives at random.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import Tensor

REWARDS: dict[str, float] = {"positive": 1.0, "neutral": 0.0, "negative": -0.1}


def target_token_terms(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """The two per-example terms of the label-smoothed token loss.

    ``logits`` is [T, V] (the positions that predict the T target tokens), ``targets`` is [T].
    Returns ``(log_prob, smoothing)``: log_prob = Σ_t log softmax(logits_t)[target_t] and
    smoothing = H̃ = mean over t of −(1/V) Σ_v log softmax(logits_t)_v, both float32 scalars that
    carry the gradient of ``logits``.
    """
    _check_token_shapes(logits, targets)
    log_probs = logits.float().log_softmax(dim=-1)
    log_prob = log_probs.gather(-1, targets.unsqueeze(-1)).sum()
    smoothing = -log_probs.mean(dim=-1).mean()
    return log_prob, smoothing


def constrained_log_prob(
    logits: Tensor,
    targets: Tensor,
    allowed: Sequence[Sequence[int]],
    temperature: float = 1.0,
) -> Tensor:
    """Log-probability of ``targets`` under the constrained, temperature-scaled distribution.

    Σ_t [logits_t[target_t]/τ − logsumexp(logits_t[allowed_t]/τ)]: the distribution a policy
    samples from when at step t only the token ids ``allowed[t]`` are permitted. ``logits`` is
    [T, V], ``targets`` is [T], ``allowed`` has T entries and ``allowed[t]`` must contain
    ``targets[t]`` (ValueError naming the step otherwise). Float32 scalar, differentiable.
    """
    _check_token_shapes(logits, targets)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    steps, vocabulary = logits.shape
    if len(allowed) != steps:
        raise ValueError(f"allowed has {len(allowed)} steps, logits have {steps}")
    mask = torch.zeros(steps, vocabulary, dtype=torch.bool, device=logits.device)
    for step, (target, ids) in enumerate(zip(targets.tolist(), allowed, strict=True)):
        if target not in ids:
            raise ValueError(f"step {step}: target token {target} is not among the allowed tokens")
        if any(not 0 <= token < vocabulary for token in ids):
            raise ValueError(f"step {step}: an allowed token id is outside the vocabulary")
        mask[step, list(ids)] = True
    scaled = logits.float() / temperature
    chosen = scaled.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    normaliser = scaled.masked_fill(~mask, float("-inf")).logsumexp(dim=-1)
    return (chosen - normaliser).sum()


def fft_loss(log_prob: Tensor, tokens: Tensor | int, smoothing: Tensor, epsilon: float) -> Tensor:
    """FFT loss (1 − ε)·(−log_prob / T) + ε·H̃, elementwise over examples.

    ``tokens`` is T, the number of target tokens; ``log_prob`` and ``smoothing`` come from
    ``target_token_terms``. Equals torch's ``cross_entropy(..., label_smoothing=ε)`` averaged over
    the example's tokens.
    """
    return (1.0 - epsilon) * (-log_prob / tokens) + epsilon * smoothing


def reward_for(label: str) -> float:
    """The RL reward of a feedback label (see ``REWARDS``); ValueError for an unknown label."""
    try:
        return REWARDS[label]
    except KeyError:
        raise ValueError(
            f"unknown feedback label {label!r}; expected one of {sorted(REWARDS)}"
        ) from None


def rl_coefficient(
    constrained_log_prob: Tensor,
    logged_probability: Tensor | float,
    reward: Tensor | float,
    *,
    floor: float = 0.01,
    cap: float = 1.0,
) -> Tensor:
    """Importance weight c of the RL loss, elementwise over examples, without gradient.

    c = 1 where R ≥ 0; where R < 0, c = min(exp(constrained_log_prob) / max(p_t, floor), cap),
    with p_t = ``logged_probability``, the probability logged when the action was sampled.
    """
    current = constrained_log_prob.detach()
    if not current.is_floating_point():
        current = current.float()
    logged = torch.as_tensor(logged_probability, dtype=current.dtype, device=current.device)
    rewards = torch.as_tensor(reward, dtype=current.dtype, device=current.device)
    ratio = (current.exp() / logged.clamp(min=floor)).clamp(max=cap)
    return torch.where(rewards >= 0, torch.ones_like(ratio), ratio)


def rl_loss(
    log_prob: Tensor,
    tokens: Tensor | int,
    smoothing: Tensor,
    reward: Tensor | float,
    coefficient: Tensor | float,
    epsilon: float,
) -> Tensor:
    """RL loss (1 − ε)·(−c·R·log_prob / T) + ε·|R|·H̃, elementwise over examples.

    ``coefficient`` is c from ``rl_coefficient`` and is treated as a constant (detached).
    """
    if isinstance(coefficient, Tensor):
        coefficient = coefficient.detach()
    rewards = torch.as_tensor(reward, dtype=log_prob.dtype, device=log_prob.device)
    policy_term = -coefficient * rewards * log_prob / tokens
    return (1.0 - epsilon) * policy_term + epsilon * rewards.abs() * smoothing


def smoothed(policy_loss: Tensor, smoothing: Tensor, epsilon: float) -> Tensor:
    """(1 − ε)·policy_loss + ε·H̃: label smoothing added to a policy term (KTO's)."""
    return (1.0 - epsilon) * policy_loss + epsilon * smoothing


def kto_losses(
    policy_log_prob: Tensor,
    reference_log_prob: Tensor,
    desirable: Tensor,
    kl_policy_log_prob: Tensor,
    kl_reference_log_prob: Tensor,
    *,
    beta: float = 0.5,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Per-example KTO losses [N] and the batch's KL estimate z (a detached scalar).

    ``policy_log_prob``, ``reference_log_prob`` and the boolean ``desirable`` are [N], one entry
    per example; the ``kl_*`` log-probabilities are those of the batch's mismatched
    (prompt, completion) pairs. The reference log-probabilities are constants (detached). The mean
    of the losses is TRL's ``KTOTrainer`` loss (loss type "kto").
    """
    if desirable.dtype != torch.bool:
        raise ValueError(f"desirable must be a boolean tensor, got {desirable.dtype}")
    if not policy_log_prob.shape == reference_log_prob.shape == desirable.shape:
        raise ValueError("policy, reference and desirable must have the same shape")
    if kl_policy_log_prob.shape != kl_reference_log_prob.shape or kl_policy_log_prob.numel() == 0:
        raise ValueError("the KL log-probabilities must be non-empty and of the same shape")
    z = (kl_policy_log_prob - kl_reference_log_prob).mean().detach().clamp(min=0)
    log_ratio = policy_log_prob - reference_log_prob.detach()
    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (log_ratio - z)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (z - log_ratio)))
    return torch.where(desirable, desirable_losses, undesirable_losses), z


def subsample_negatives(
    labels: Sequence[str], *, positives: int = 5, negatives: int = 4, seed: int | str
) -> list[int]:
    """Indices (ascending) of the examples to train on, at most ``positives : negatives``.

    Every positive and neutral example is kept; the negative ones are sampled uniformly without
    replacement, with ``random.Random(seed)``, down to round(n_positive · negatives / positives)
    (Python's ``round``), or all kept when there are no more than that. Deterministic in the seed
    and the labels. ValueError for an unknown label.
    """
    if positives <= 0 or negatives < 0:
        raise ValueError(f"ratio {positives}:{negatives} needs positives > 0 and negatives >= 0")
    for label in labels:
        reward_for(label)
    negative_indices = [index for index, label in enumerate(labels) if label == "negative"]
    budget = round(sum(label == "positive" for label in labels) * negatives / positives)
    kept_negatives = (
        negative_indices
        if len(negative_indices) <= budget
        else random.Random(seed).sample(negative_indices, budget)
    )
    others = [index for index, label in enumerate(labels) if label != "negative"]
    return sorted(others + kept_negatives)


def _check_token_shapes(logits: Tensor, targets: Tensor) -> None:
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits [T, V] and targets [T], got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
