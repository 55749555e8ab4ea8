"""Captions naming the metric conventions of a run's numbers, from its stored results only.

A caption names the run's conventions (``parameters.conventions``; results without it are the
platform's) and, for any other, what of a table's or figure's numbers differs from the
platform's definitions: the convention fields the section or metric depends on
(``evaluation.stats.metrics``) and the interval method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from evaluation.stats import conventions as conv
from evaluation.stats.metrics import convention_fields


def confidence_label(results: dict) -> str:
    """The run's confidence level as people read it (``95%``)."""
    return f"{100 * results.get('parameters', {}).get('confidence', 0.95):g}%"


METHOD_NAMES = {"bca": "BCa", "percentile": "percentile"}
CONVENTION_TITLES = {
    "platform": "Platform conventions",
    "paper": "Paper conventions (ReSpect study)",
}
RUN_FIELDS = tuple(
    f.name for f in dataclasses.fields(conv.Conventions) if f.name not in ("name", "interval")
)
"""The convention fields a whole run's numbers depend on besides the interval method; those of
a section or one metric are ``evaluation.stats.metrics.convention_fields``."""
_PLATFORM_TEXT = {
    "positive_answers": "any yes…",
    "sim_neg_fb": "turns with negative feedback",
    "tokens": "whitespace-separated words",
    "length_per": "per non-empty utterance",
}


def conventions_of(results: dict) -> conv.Conventions:
    """The conventions a run's results were computed under (older results: the platform's)."""
    return conv.conventions_named(results.get("parameters", {}).get("conventions", "platform"))


def interval_method(results: dict) -> str:
    """The run's interval method (its parameters', else its conventions' default)."""
    return results.get("parameters", {}).get("method") or conventions_of(results).interval


def _answers_text(answers: Sequence[str]) -> str:
    if set(answers) == set(conv.PLATFORM.positive_answers):
        return "any yes… answer"
    if tuple(answers) == ("yes",):
        return "a plain yes only"
    return " or ".join(answers)


def _field_text(conventions: conv.Conventions, name: str) -> str:
    """How ``conventions`` defines one field, in words."""
    if name == "positive_answers":
        return "positive feedback counts " + _answers_text(conventions.positive_answers)
    if name == "sim_neg_fb":
        if conventions.sim_neg_fb == conv.SIM_NEG_FB_NEGATIVE:
            return "Sim −FB averages over turns with negative feedback"
        if tuple(conventions.positive_answers) == ("yes",):
            return "Sim −FB averages over turns answered anything but a plain yes"
        return "Sim −FB averages over turns without positive feedback"
    if name == "tokens":
        if conventions.tokens == conv.ALPHANUMERIC:
            return "vocabulary and utterance length count alphanumeric tokens [a-z0-9]+"
        return "vocabulary and utterance length count whitespace-separated words"
    if name == "length_per":
        unit = "turn" if conventions.length_per == conv.PER_TURN else "non-empty utterance"
        return f"utterance length is tokens per {unit}"
    raise KeyError(name)


def convention_differences(
    results: dict, section: str | None = None, *, intervals: bool = True
) -> list[str]:
    """What of the numbers of a section or metric (the whole run's if None) differs from the
    platform's definitions under the run's conventions: one phrase each, the platform's in
    parentheses. ``intervals`` False: numbers without intervals (counts), so no interval phrase.
    """
    conventions = conventions_of(results)
    fields = RUN_FIELDS if section is None else convention_fields(section)
    differences = [
        f"{_field_text(conventions, name)} (platform: {_PLATFORM_TEXT[name]})"
        for name in fields
        if getattr(conventions, name) != getattr(conv.PLATFORM, name)
    ]
    method = interval_method(results)
    if intervals and method != conv.PLATFORM.interval:
        platform = METHOD_NAMES[conv.PLATFORM.interval]
        differences.append(f"{METHOD_NAMES[method]} bootstrap intervals (platform: {platform})")
    return differences


def conventions_caption(
    results: dict, section: str | None = None, *, intervals: bool = True
) -> str:
    """Which conventions a table or figure (of a section or one metric; None: the whole run)
    uses and, where they are not the platform's, what differs from the platform's definitions.
    """
    conventions = conventions_of(results)
    title = CONVENTION_TITLES.get(conventions.name, f"{conventions.name} conventions")
    differences = convention_differences(results, section, intervals=intervals)
    if differences:
        return f"{title}; differs from the platform's definitions: {'; '.join(differences)}."
    method = f", {confidence_label(results)} {METHOD_NAMES[interval_method(results)]} intervals"
    same = "the platform's" if conventions == conv.PLATFORM else "here the same as the platform's"
    return f"{title}: {same} definitions{method if intervals else ''}."
