"""The three objectives as loss components, each chosen once per run (worker code: torch).

An ``Objective`` says everything the loop needs about one learning method: which examples it
trains on, whose logged p_t it reads, what it prepares before the first step (KTO's
references), which no-gradient terms each step needs (``step_terms``: the off-policy values on
the stored prompts, KTO's reference point), its per-example loss, and what its diagnostics
report. The loop calls these and nothing else, so adding an objective is one class here plus
its pure facts in ``config.py``. D₀ rehearsal items take ``FFT``'s loss whatever the objective.

Gradient and value are computed on different prompts when augmenting: the gradient term reads
the example as trained (maybe permuted), while c, r and z read the stored example
(``probes.acted_log_probs``). KTO's r keeps its stored value and the permuted example's
gradient: r = r_stored + (log π_perm − stop_gradient(log π_perm)).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .config import OBJECTIVE_LABELS, PROBABILITY_NEEDED, TrainingConfig
from .examples import Example
from .logged import sampling_temperature
from .objectives import (
    constrained_log_prob,
    fft_loss,
    kto_losses,
    reward_for,
    rl_coefficient,
    rl_loss,
    smoothed,
    subsample_negatives,
    target_token_terms,
)
from .packing import PackedSequence, Scorer, span_logits
from .planning import Item
from .probes import (
    acted_log_probs,
    kl_estimate,
    kl_references,
    log_or_floor,
    spread,
    weight_summary,
)


@dataclass
class SpanTerms:
    """What one item's loss reads from the forward pass (all carry the gradient)."""

    item: Item
    log_prob: Tensor
    smoothing: Tensor
    tokens: int
    rows: Tensor
    targets: Tensor
    allowed: tuple[tuple[int, ...], ...]

    def constrained(self, temperature: float) -> Tensor:
        return constrained_log_prob(self.rows, self.targets, self.allowed, temperature)


@dataclass
class StepTerms:
    """A step's no-gradient terms: log π(â|x) on each stored prompt that needs it, and z."""

    acted: dict[str, float] = field(default_factory=dict)
    z: float = 0.0


class Objective:
    """FFT (the base): positive examples, token cross-entropy with label smoothing."""

    name = "fft"

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.labels = OBJECTIVE_LABELS[self.name]
        self.logged_labels = PROBABILITY_NEEDED[self.name]

    def examples(self, train: Sequence[Example], seed_key: str) -> list[Example]:
        return [e for e in train if e.label in self.labels]

    def prepare(self, scorer: Scorer, examples: Sequence[Example], seed_key: str) -> dict:
        """What is computed once before the first step (saved with every checkpoint)."""
        return {}

    def step_terms(
        self, scorer: Scorer, items: Sequence[Item], state: dict, world: int
    ) -> StepTerms:
        logged = [i.acted for i in items if not i.rehearsal and i.acted.label in self.logged_labels]
        return StepTerms(acted_log_probs(scorer, logged, self.config))

    def loss(self, span: SpanTerms, terms: StepTerms) -> Tensor:
        return fft_loss(span.log_prob, span.tokens, span.smoothing, self.config.label_smoothing)

    def diagnostics(self, stored: Sequence[Example], terms: StepTerms) -> dict[str, list]:
        """Raw diagnostic values of a step (summarised per epoch by ``summarise``)."""
        return {}

    @staticmethod
    def summarise(values: dict[str, list]) -> dict:
        return {
            "rl_coefficient": weight_summary(
                values.get("rl_ratio", []), values.get("rl_capped", [])
            ),
            "kto_log_ratio": spread(values.get("kto_r", [])),
            "kto_reference_point": spread(values.get("kto_z", [])),
        }


class _Subsampled(Objective):
    def examples(self, train: Sequence[Example], seed_key: str) -> list[Example]:
        kept = [e for e in train if e.label in self.labels]
        positives, negatives = self.config.negative_ratio
        keep = subsample_negatives(
            [e.label for e in kept], positives=positives, negatives=negatives, seed=seed_key
        )
        return [kept[i] for i in keep]


class RL(_Subsampled):
    """REINFORCE with the capped importance weight c on negative examples."""

    name = "rl"

    def _ratio(self, example: Example, terms: StepTerms) -> float:
        """π(â|x) / p_t on the stored prompt, before floor and cap."""
        return math.exp(terms.acted[example.key]) / max(example.probability or 0.0, 1e-30)

    def loss(self, span: SpanTerms, terms: StepTerms) -> Tensor:
        example = span.item.acted
        reward = reward_for(example.label)
        coefficient: Tensor | float = 1.0
        if example.label in self.logged_labels:
            coefficient = rl_coefficient(
                torch.tensor(terms.acted[example.key]),
                example.probability if example.probability is not None else 1.0,
                reward,
                floor=self.config.rl_propensity_floor,
                cap=self.config.rl_coefficient_cap,
            ).to(span.log_prob.device)
        return rl_loss(
            span.log_prob,
            span.tokens,
            span.smoothing,
            reward,
            coefficient,
            self.config.label_smoothing,
        )

    def diagnostics(self, stored: Sequence[Example], terms: StepTerms) -> dict[str, list]:
        floor, cap = self.config.rl_propensity_floor, self.config.rl_coefficient_cap
        ratios, capped = [], []
        for example in stored:
            if example.key in terms.acted and example.label in self.logged_labels:
                ratio = self._ratio(example, terms)
                ratios.append(ratio)
                probability = example.probability or 0.0
                applied = ratio * probability / max(probability, floor)
                capped.append(bool(applied > cap or probability < floor))
        return {"rl_ratio": ratios, "rl_capped": capped}


class KTO(_Subsampled):
    """KTO with log p_t as the reference and z from mismatched completions."""

    name = "kto"

    def prepare(self, scorer: Scorer, examples: Sequence[Example], seed_key: str) -> dict:
        import random

        rng = random.Random(f"{seed_key}:kl")
        return {"kl_references": kl_references(scorer, examples, self.config, rng)}

    def step_terms(
        self, scorer: Scorer, items: Sequence[Item], state: dict, world: int
    ) -> StepTerms:
        terms = super().step_terms(scorer, items, state, world)
        references = state["kl_references"]
        probes = [
            (i.acted, *references[i.acted.key])
            for i in items
            if not i.rehearsal and i.acted.key in references
        ]
        terms.z = kl_estimate(scorer, probes, self.config, world)
        return terms

    def loss(self, span: SpanTerms, terms: StepTerms) -> Tensor:
        example = span.item.acted
        temperature = sampling_temperature(example.temperature, self.config.temperature)
        trained = span.constrained(temperature)
        # The stored prompt's value, the trained (maybe permuted) example's gradient.
        policy = terms.acted[example.key] + (trained - trained.detach())
        reference = torch.tensor(log_or_floor(example.probability), device=trained.device)
        loss, _ = kto_losses(
            policy[None],
            reference[None],
            torch.tensor([example.label == "positive"], device=trained.device),
            torch.tensor([terms.z]),
            torch.tensor([0.0]),
            beta=self.config.kto_beta,
            desirable_weight=self.config.kto_desirable_weight,
            undesirable_weight=self.config.kto_undesirable_weight,
        )
        return smoothed(loss[0], span.smoothing, self.config.label_smoothing)

    def diagnostics(self, stored: Sequence[Example], terms: StepTerms) -> dict[str, list]:
        ratios = [
            terms.acted[e.key] - log_or_floor(e.probability) for e in stored if e.key in terms.acted
        ]
        return {"kto_r": ratios, "kto_z": [terms.z] if ratios else []}


OBJECTIVE_CLASSES: dict[str, type[Objective]] = {"fft": Objective, "rl": RL, "kto": KTO}


def objective_for(config: TrainingConfig) -> Objective:
    return OBJECTIVE_CLASSES[config.objective](config)


def rehearsal_for(config: TrainingConfig) -> Objective:
    """D₀ rehearsal: cross-entropy with the run's label-smoothing weight."""
    return Objective(config)


# -- losses of a group ----------------------------------------------------------------------------


def spans_of(scorer: Scorer, items: Sequence[Item], sequence: PackedSequence) -> list[SpanTerms]:
    """One forward pass over ``sequence`` (built from ``items``' examples) and its spans' terms."""
    logits = scorer.logits(sequence, items[sequence.spans[0].example].example)
    spans = []
    for span in sequence.spans:
        rows = span_logits(logits, span)
        targets = torch.tensor(span.targets, device=rows.device)
        log_prob, smoothing = target_token_terms(rows, targets)
        spans.append(
            SpanTerms(
                items[span.example],
                log_prob,
                smoothing,
                len(span.targets),
                rows,
                targets,
                span.allowed,
            )
        )
    return spans


def span_terms(scorer: Scorer, items: Sequence[Item], packing: bool) -> Iterator[list[SpanTerms]]:
    """The span terms of a group's items, one list per forward pass (packed or single)."""
    for sequence in scorer.sequences([item.example for item in items], packing=packing):
        yield spans_of(scorer, items, sequence)


def losses_of(
    spans: Sequence[SpanTerms], objective: Objective, rehearsal: Objective, terms: StepTerms
) -> list[Tensor]:
    return [(rehearsal if s.item.rehearsal else objective).loss(s, terms) for s in spans]


def item_losses(
    scorer: Scorer, items: Sequence[Item], objective: Objective, terms: StepTerms
) -> list[Tensor]:
    """Each item's loss (in the order of the items), from packed (or single) forward passes,
    with the step's terms (``Objective.step_terms``)."""
    rehearsal = rehearsal_for(objective.config)
    order = {id(item): index for index, item in enumerate(items)}
    losses: list[Tensor | None] = [None] * len(items)
    for spans in span_terms(scorer, items, objective.config.packing):
        for span, loss in zip(spans, losses_of(spans, objective, rehearsal, terms), strict=True):
            losses[order[id(span.item)]] = loss
    return [loss for loss in losses if loss is not None]
