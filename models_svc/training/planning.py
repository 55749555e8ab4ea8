"""The plan of a seed: which items each step of each epoch holds (pure given a seeded RNG).

A step gathers whole games (a group shares one packed sequence) until it holds
``effective_batch`` items; the order of games is shuffled per epoch, deterministically in the
run seed, the seed index and the epoch. With augmentation on, each game is re-lettered as a
whole under one permutation of its images (``examples.permuted``); the item keeps the example as
it was stored, so every term that compares the policy with the logged p_t is computed on the
prompt the turn was acted under.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .config import TrainingConfig
from .examples import Example, permuted


@dataclass
class Item:
    """An example in a step, as trained (``example``, permuted when augmenting) and as stored
    (``stored``, the prompt the turn was acted under); ``rehearsal`` items (D₀) take the
    cross-entropy loss whatever the run's objective."""

    example: Example
    rehearsal: bool = False
    stored: Example | None = None

    @property
    def acted(self) -> Example:
        """The example as the turn was acted under (the off-policy terms are computed on it)."""
        return self.stored if self.stored is not None else self.example


Steps = list[list[list[Item]]]


def epoch_steps(items: Sequence[Item], config: TrainingConfig, rng: random.Random) -> Steps:
    """Groups of items per step: whole games, shuffled, gathered until a step holds
    ``effective_batch`` examples; each game permuted as a whole when augmenting."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.example.group, []).append(item)
    order = sorted(groups)
    rng.shuffle(order)
    steps: Steps = []
    current: list[list[Item]] = []
    count = 0
    for name in order:
        members = groups[name]
        if config.augment_permutations:
            members = same_permutation(members, rng)
        current.append(members)
        count += len(members)
        if count >= config.effective_batch:
            steps.append(current)
            current, count = [], 0
    if current:
        steps.append(current)
    return steps


def same_permutation(members: list[Item], rng: random.Random) -> list[Item]:
    """The group's items under one permutation of the images (the prompts stay prefixes); each
    item keeps its stored example."""
    seed = rng.random()
    return [
        Item(permuted(item.example, random.Random(seed)), item.rehearsal, item.acted)
        for item in members
    ]


def plan(config: TrainingConfig, run_seed: str, seed: int, items: Sequence[Item]) -> list[Steps]:
    """Every epoch's steps for one seed (deterministic in the run seed, seed and epoch)."""
    return [
        epoch_steps(items, config, random.Random(f"{run_seed}:{seed}:{epoch}"))
        for epoch in range(config.epochs)
    ]


def hash_seed(run_seed: str, seed: int) -> int:
    digest = hashlib.sha256(f"{run_seed}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    return counts
