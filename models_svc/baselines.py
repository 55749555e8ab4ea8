"""Policies that need no model weights: random valid actions (CPU, no torch).

``random`` samples uniformly among all valid non-empty actions for the current selection
(the same space the model policies are constrained to, see ``models_svc.action_space``), so the
probability of every action is exactly 1 / (2^n − 1) for n context images. ``random:toggle``
clicks exactly one image, uniformly: probability 1 / n.
Sampling is seeded by ``PolicyInput.seed``: a redelivered task picks the same action.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from games.actions import Action, context_letters, format_action

from .action_space import action_count, action_for_mask
from .interfaces import PolicyDecision, PolicyInput


class RandomPolicy:
    """Uniform over all valid non-empty actions: p = 1 / (2^n − 1)."""

    name = "random"

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        return [self._act_one(item) for item in inputs]

    def _act_one(self, item: PolicyInput) -> PolicyDecision:
        size = len(item.images)
        letters = context_letters(size)
        mask = random.Random(item.seed).randrange(1, 2**size)
        action = action_for_mask(mask, letters, frozenset(item.selection))
        return PolicyDecision(format_action(action), 1.0 / action_count(size))


class RandomTogglePolicy:
    """One click, uniform over the n images (select it if unselected, else deselect): p = 1/n."""

    name = "random:toggle"

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        decisions = []
        for item in inputs:
            letters = context_letters(len(item.images))
            letter = random.Random(item.seed).choice(letters)
            if letter in item.selection:
                action = Action(deselect=frozenset({letter}))
            else:
                action = Action(select=frozenset({letter}))
            decisions.append(PolicyDecision(format_action(action), 1.0 / len(letters)))
        return decisions
