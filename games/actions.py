"""The action grammar of MultiRef (pure; no ORM).

Context images are lettered A, B, C, ... in the *listener's* display order. An action string
deselects, then selects: ``select A C``, ``deselect B``, ``deselect B select D F``. Letters are
sorted within each part and appear at most once. The empty action (the listener changed nothing)
is the empty string. An action that deselects an unselected image or selects a selected one is
invalid for that selection: it is reported, never silently repaired.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from config.echo import shown

LETTERS = string.ascii_uppercase
EMPTY_ACTION_STRING = ""


class ActionError(ValueError):
    """An action string or an action that breaks the grammar or the current selection."""


@dataclass(frozen=True)
class Action:
    """A listener action as two disjoint sets of letters."""

    deselect: frozenset[str] = frozenset()
    select: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        both = self.deselect & self.select
        if both:
            raise ActionError(f"letters both deselected and selected: {' '.join(sorted(both))}")

    @property
    def is_empty(self) -> bool:
        return not self.deselect and not self.select

    def __str__(self) -> str:
        return format_action(self)


EMPTY_ACTION = Action()


def context_letters(context_size: int) -> str:
    """The letters naming a context of ``context_size`` images."""
    if not 1 <= context_size <= len(LETTERS):
        raise ActionError(f"context size must be between 1 and {len(LETTERS)}, got {context_size}")
    return LETTERS[:context_size]


def format_action(action: Action) -> str:
    """The canonical string of an action."""
    parts: list[str] = []
    if action.deselect:
        parts.append("deselect " + " ".join(sorted(action.deselect)))
    if action.select:
        parts.append("select " + " ".join(sorted(action.select)))
    return " ".join(parts)


def parse_action(text: str, context_size: int = 10, *, strict: bool = True) -> Action:
    """Parse an action string.

    ``strict`` accepts only canonical strings (what ``format_action`` writes). Without it, case,
    extra whitespace and letter order are forgiven, but repeated letters, letters outside the
    context and misplaced keywords are still errors.
    """
    allowed = context_letters(context_size)
    words = text.split() if not strict else text.split(" ") if text else []
    if strict and text != text.strip():
        raise ActionError(f"action {shown(text)} has leading or trailing whitespace")
    if not strict:
        words = [w.lower() if w.lower() in ("select", "deselect") else w.upper() for w in words]
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for position, word in enumerate(words):
        if word in ("select", "deselect"):
            if word in parts:
                raise ActionError(f"action {shown(text)} has '{word}' twice")
            if word == "deselect" and "select" in parts:
                raise ActionError(f"action {shown(text)}: 'deselect' must come before 'select'")
            parts[word] = []
            current = word
            continue
        if current is None:
            raise ActionError(
                f"action {shown(text)} must start with 'select' or 'deselect', not {shown(word)}"
            )
        if len(word) != 1 or word not in LETTERS:
            raise ActionError(
                f"action {shown(text)}: {shown(word)} (word {position + 1}) is not a letter"
            )
        if word not in allowed:
            raise ActionError(
                f"action {shown(text)}: letter {word} is outside the context (A-{allowed[-1]})"
            )
        if word in parts[current]:
            raise ActionError(f"action {shown(text)}: letter {word} appears twice in '{current}'")
        parts[current].append(word)
    for keyword, letters in parts.items():
        if not letters:
            raise ActionError(f"action {shown(text)}: '{keyword}' names no letter")
        if strict and letters != sorted(letters):
            raise ActionError(f"action {shown(text)}: letters after '{keyword}' must be sorted")
    action = Action(frozenset(parts.get("deselect", ())), frozenset(parts.get("select", ())))
    return action


def canonicalize_action(text: str, context_size: int = 10) -> str:
    """The canonical form of a leniently written action string."""
    return format_action(parse_action(text, context_size, strict=False))


def apply_action(selection: Iterable[str], action: Action) -> frozenset[str]:
    """The selection after ``action``; raises if the action does not fit ``selection``."""
    current = frozenset(selection)
    not_selected = action.deselect - current
    if not_selected:
        raise ActionError(f"cannot deselect {' '.join(sorted(not_selected))}: not selected")
    already = action.select & current
    if already:
        raise ActionError(f"cannot select {' '.join(sorted(already))}: already selected")
    return (current - action.deselect) | action.select


def derive_action(before: Iterable[str], after: Iterable[str]) -> Action:
    """The action that turns selection ``before`` into ``after``."""
    before_set, after_set = frozenset(before), frozenset(after)
    return Action(deselect=before_set - after_set, select=after_set - before_set)


def is_valid_for(action: Action, selection: Iterable[str], context_size: int = 10) -> bool:
    """Whether ``action`` names only context letters and fits ``selection``."""
    allowed = set(context_letters(context_size))
    if not (action.deselect | action.select) <= allowed:
        return False
    current = frozenset(selection)
    return action.deselect <= current and not (action.select & current)


def letter_map(listener_order: Sequence[str]) -> dict[str, str]:
    """Tangram id → letter, for images lettered in ``listener_order``."""
    letters = context_letters(len(listener_order))
    if len(set(listener_order)) != len(listener_order):
        raise ActionError("the listener order names an image twice")
    return dict(zip(listener_order, letters, strict=True))


def tangrams_to_letters(listener_order: Sequence[str], tangrams: Iterable[str]) -> frozenset[str]:
    """Letters of ``tangrams`` in the listener order; unknown ids raise."""
    mapping = letter_map(listener_order)
    letters = set()
    for tangram in tangrams:
        if tangram not in mapping:
            raise ActionError(f"image {shown(tangram)} is not in the context")
        letters.add(mapping[tangram])
    return frozenset(letters)


def letters_to_tangrams(listener_order: Sequence[str], letters: Iterable[str]) -> list[str]:
    """Tangram ids of ``letters``, in listener order."""
    allowed = context_letters(len(listener_order))
    chosen = set(letters)
    outside = chosen - set(allowed)
    if outside:
        raise ActionError(f"letters outside the context: {' '.join(sorted(outside))}")
    return [
        tangram for tangram, letter in zip(listener_order, allowed, strict=True) if letter in chosen
    ]


def action_between(
    listener_order: Sequence[str], before: Iterable[str], after: Iterable[str]
) -> str:
    """Canonical action string between two selections given as tangram ids."""
    return format_action(
        derive_action(
            tangrams_to_letters(listener_order, before), tangrams_to_letters(listener_order, after)
        )
    )


def selection_state_text(listener_order: Sequence[str], selection: Iterable[str]) -> str:
    """The policy prompt's state message: ``none is selected`` or ``A C currently selected``."""
    letters = sorted(tangrams_to_letters(listener_order, selection))
    return "none is selected" if not letters else " ".join(letters) + " currently selected"
