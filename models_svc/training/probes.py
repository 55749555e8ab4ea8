"""No-gradient passes of the trainer: the off-policy terms on the prompts the turns were acted
under, KTO's reference point, and the importance-weight diagnostics (worker code: torch).

Every pass here runs with dropout off (``model.eval()``) and without gradient, through the model
itself (never the data-parallel wrapper, whose forward would start collectives), at each
example's recorded sampling temperature (``logged.sampling_temperature``). Whatever the step
trains on (a permuted example when augmenting), these values are those of the stored example:
when the model is the policy that logged p_t, π(â|x)/p_t = 1 and log π(â|x) − log p_t = 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import torch
import torch.distributed as dist

from ..action_space import valid_actions
from .config import TrainingConfig
from .examples import Example
from .logged import sampling_temperature
from .objectives import constrained_log_prob
from .packing import Scorer, span_logits


@contextmanager
def evaluating(scorer: Scorer) -> Iterator[None]:
    """Dropout off, no gradient, forward passes through the model itself; restored after."""
    model = next(iter(scorer.policies.values())).loaded.model
    was_training, wrapper = model.training, scorer.model
    model.eval()
    scorer.model = None
    try:
        with torch.no_grad():
            yield
    finally:
        scorer.model = wrapper
        model.train(was_training)


def acted_log_probs(
    scorer: Scorer, examples: Sequence[Example], config: TrainingConfig
) -> dict[str, float]:
    """log π(â|x) of each example on its stored prompt, under the constrained distribution at
    its recorded temperature (packed per game, like the training passes)."""
    values: dict[str, float] = {}
    if not examples:
        return values
    with evaluating(scorer):
        for sequence in scorer.sequences(examples, packing=config.packing):
            logits = scorer.logits(sequence, examples[sequence.spans[0].example])
            for span in sequence.spans:
                example = examples[span.example]
                rows = span_logits(logits, span)
                targets = torch.tensor(span.targets, device=rows.device)
                temperature = sampling_temperature(example.temperature, config.temperature)
                values[example.key] = float(
                    constrained_log_prob(rows, targets, span.allowed, temperature)
                )
    return values


def action_log_prob(scorer: Scorer, example: Example, action: str, temperature: float) -> float:
    """log π(action | example's stored prompt) under the constrained distribution (no
    gradient, dropout off)."""
    probe = replace(example, action=action)
    with evaluating(scorer):
        sequence = scorer.single(probe, 0)
        logits = scorer.logits(sequence, probe)
        span = sequence.spans[0]
        rows = span_logits(logits, span)
        targets = torch.tensor(span.targets, device=rows.device)
        return float(constrained_log_prob(rows, targets, span.allowed, temperature))


def mismatched_action(example: Example, others: Sequence[Example], rng: random.Random) -> str:
    """Another example's action valid for this selection, else a random other valid action:
    the unrelated completion KTO's reference point is estimated from."""
    valid = set(valid_actions(example.selection, len(example.images)))
    candidates = sorted({o.action for o in others if o.action in valid} - {example.action})
    if not candidates:
        candidates = sorted(valid - {example.action})
    return rng.choice(candidates)


def kl_references(
    scorer: Scorer, examples: Sequence[Example], config: TrainingConfig, rng: random.Random
) -> dict[str, list]:
    """Each example's mismatched completion and its log-probability under the starting policy
    (π_ref of KTO's reference point), computed once before the first step."""
    references: dict[str, list] = {}
    for example in examples:
        action = mismatched_action(example, examples, rng)
        temperature = sampling_temperature(example.temperature, config.temperature)
        references[example.key] = [action, action_log_prob(scorer, example, action, temperature)]
    return references


def kl_estimate(
    scorer: Scorer,
    probes: Sequence[tuple[Example, str, float]],
    config: TrainingConfig,
    world: int,
) -> float:
    """KTO's z from ``(stored example, mismatched action, reference log-probability)`` probes:
    the mean of log π(y'|x) − log π_ref(y'|x) over every process's probes, clamped at 0."""
    total = torch.zeros(2, dtype=torch.float64)
    for example, action, reference in probes:
        temperature = sampling_temperature(example.temperature, config.temperature)
        value = action_log_prob(scorer, example, action, temperature)
        total += torch.tensor([value - reference, 1.0], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(total)
    return max(0.0, float(total[0] / total[1])) if total[1] else 0.0


# -- diagnostics ----------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict | None:
    """min, mean, max and count of the values; None when there are none."""
    if not values:
        return None
    return {
        "min": min(values),
        "mean": sum(values) / len(values),
        "max": max(values),
        "n": len(values),
    }


def weight_summary(ratios: Sequence[float], capped: Sequence[bool]) -> dict | None:
    """RL's importance weights before capping: their spread, the share the floor or cap
    changed, and the effective sample size (Σw)² / Σw²."""
    summary = spread(ratios)
    if summary is None:
        return None
    squares = sum(w * w for w in ratios)
    summary["share_capped"] = sum(capped) / len(capped)
    summary["effective_sample_size"] = sum(ratios) ** 2 / squares if squares else 0.0
    return summary


def gather(values: dict[str, list], world: int) -> dict[str, list]:
    """Every process's diagnostic values, concatenated per name."""
    if world <= 1:
        return values
    everyone: list = [None] * world
    dist.all_gather_object(everyone, values)
    merged: dict[str, list] = {}
    for part in everyone:
        for name, items in part.items():
            merged.setdefault(name, []).extend(items)
    return merged


def log_or_floor(probability: float | None) -> float:
    return math.log(max(probability or 0.0, 1e-30))
