"""The action space and the random baseline policies (no torch)."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy.stats import chisquare

from games.actions import is_valid_for, parse_action
from models_svc.action_space import (
    action_count,
    from_surface_form,
    surface_form,
    valid_actions,
)
from models_svc.baselines import RandomPolicy, RandomTogglePolicy
from models_svc.interfaces import PolicyInput

IMAGES = tuple(f"page1-{i}" for i in range(10))


@pytest.mark.parametrize("selection", [(), ("A",), ("B", "E", "J"), tuple("ABCDEFGHIJ")])
def test_valid_actions_are_every_valid_nonempty_action_once(selection):
    actions = list(valid_actions(selection, 10))
    assert len(actions) == len(set(actions)) == action_count(10) == 1023
    for text in actions:
        action = parse_action(text, 10, strict=True)
        assert not action.is_empty
        assert is_valid_for(action, selection, 10)


def test_valid_actions_small_context_by_hand():
    assert sorted(valid_actions(("A",), 2)) == sorted(
        ["deselect A", "select B", "deselect A select B"]
    )


def test_surface_form_round_trip():
    assert surface_form("deselect B select D F") == "Deselect B select D F"
    assert surface_form("") == "No change"
    for text in ("deselect B select D F", "select A", ""):
        assert from_surface_form(surface_form(text)) == text


def test_random_policy_probability_is_exact_and_actions_valid():
    policy = RandomPolicy()
    inputs = [
        PolicyInput(images=IMAGES, selection=("C", "H"), utterance="the bird", seed=f"g:{i}")
        for i in range(300)
    ]
    decisions = policy.act(inputs)
    assert len(decisions) == 300
    for decision in decisions:
        assert decision.probability == 1 / 1023
        assert is_valid_for(parse_action(decision.action, 10), ("C", "H"), 10)
    assert len({d.action for d in decisions}) > 200


def test_random_policy_is_seeded():
    item = PolicyInput(images=IMAGES, selection=(), utterance="x", seed="17:3")
    assert RandomPolicy().act([item]) == RandomPolicy().act([item])
    others = [
        PolicyInput(images=IMAGES, selection=(), utterance="x", seed=f"17:{turn}")
        for turn in range(20)
    ]
    assert len({d.action for d in RandomPolicy().act(others)}) == 20


def test_random_policy_covers_small_space_uniformly():
    images = IMAGES[:2]
    decisions = RandomPolicy().act(
        [
            PolicyInput(images=images, selection=("A",), utterance="x", seed=str(i))
            for i in range(600)
        ]
    )
    counts = Counter(d.action for d in decisions)
    assert set(counts) == {"deselect A", "select B", "deselect A select B"}
    assert all(d.probability == 1 / 3 for d in decisions)
    # The seeds are fixed, so this p-value is too: a policy that favoured one action (say
    # 250/200/150 of 600) would give p < 1e-4.
    assert chisquare(list(counts.values())).pvalue > 0.05


def test_random_toggle_policy_clicks_one_image():
    decisions = RandomTogglePolicy().act(
        [
            PolicyInput(images=IMAGES, selection=("A", "B"), utterance="x", seed=str(i))
            for i in range(1000)
        ]
    )
    counts = Counter(d.action for d in decisions)
    assert set(counts) == {"deselect A", "deselect B"} | {f"select {c}" for c in "CDEFGHIJ"}
    assert all(d.probability == 0.1 for d in decisions)
    assert chisquare(list(counts.values())).pvalue > 0.05
