"""The listener's action space for one selection, shared by every policy (pure; no ORM).

Valid actions for a selection S over letters L are the pairs (D, A) with D ⊆ S, A ⊆ L \\ S,
not both empty: exactly one per non-empty subset T ⊆ L (deselect T ∩ S, select T \\ S), so there
are 2^|L| − 1 of them whatever S is. The empty action is never proposed by a policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from games.actions import Action, context_letters, format_action


def action_for_mask(mask: int, letters: str, selection: frozenset[str]) -> Action:
    """The action toggling the letters whose bit is set in ``mask`` (bit i ↔ ``letters[i]``)."""
    toggled = {letters[i] for i in range(len(letters)) if mask >> i & 1}
    return Action(deselect=frozenset(toggled & selection), select=frozenset(toggled - selection))


def valid_actions(selection: Iterable[str], context_size: int) -> Iterator[str]:
    """Canonical strings of every valid non-empty action, in mask order."""
    letters = context_letters(context_size)
    current = frozenset(selection)
    for mask in range(1, 2**context_size):
        yield format_action(action_for_mask(mask, letters, current))


@lru_cache(maxsize=2048)
def valid_action_list(selection: frozenset[str], context_size: int) -> tuple[str, ...]:
    """``valid_actions`` as a remembered tuple (training asks for the same selections often)."""
    return tuple(valid_actions(selection, context_size))


def action_count(context_size: int) -> int:
    return 2**context_size - 1


def surface_form(action: str) -> str:
    """How an action reads in model prompts (the paper's ``Deselect J select A``).

    The empty action reads ``No change``.
    """
    if not action:
        return "No change"
    return action[0].upper() + action[1:]


def from_surface_form(text: str) -> str:
    """The canonical action string of a surface form (inverse of ``surface_form``)."""
    if text == "No change":
        return ""
    return text[0].lower() + text[1:] if text else text
