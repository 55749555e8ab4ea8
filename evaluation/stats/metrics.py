"""The registry of a group's metrics: each metric of a results row defined once.

``evaluation.stats.study`` puts the bootstrap estimate of every ``estimate`` metric into each
row (``{"value", "ci"}``); ``evaluation.stats.columns`` writes the plain counts (the other
metrics and ``GROUP_COUNTS``/``ANNOTATION_COUNTS``) itself. ``evaluation.tables`` and
``evaluation.csv_exports`` read labels, display, sections and CSV columns from here. Decoder
and agreement measures are blocks of their own (``decoder``, ``agreement``), not metrics here.

A metric's ``depends_on`` names the fields of ``conventions.Conventions`` (besides the interval
method) that its numbers depend on; a section depends on those of its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric of a results row.

    ``estimate``: a bootstrap estimate (``{"value", "ci"}``) rather than a plain number.
    ``percent``: a rate, shown as a percentage; ``digits``: decimals otherwise (0: a count).
    ``section``: the dashboard section that shows it (``SECTIONS``).
    """

    key: str
    label: str
    section: str
    estimate: bool = True
    percent: bool = False
    digits: int = 2
    depends_on: tuple[str, ...] = ()


SECTIONS = ("success_rate", "turns_per_game", "click_accuracy", "turn_level", "decoder", "language")
"""The dashboard's sections (each with a table, a CSV file and a figure), in page order: one per
interaction metric (named by the metric), then the annotated turns, the decoder and the language."""

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("success_rate", "Success rate", "success_rate", percent=True),
        Metric("turns_per_game", "Turns per game", "turns_per_game"),
        Metric("click_accuracy", "Click accuracy", "click_accuracy", percent=True),
        Metric(
            "vocabulary_size",
            "Vocabulary size",
            "language",
            estimate=False,
            digits=0,
            depends_on=("tokens",),
        ),
        Metric(
            "utterance_length",
            "Utterance length (words)",
            "language",
            depends_on=("tokens", "length_per"),
        ),
        Metric("reset_phrases", "Reset phrases", "language", estimate=False, digits=0),
        Metric("try_again_phrases", "Try-again phrases", "language", estimate=False, digits=0),
        Metric("reset_per_100", "Reset phrases per 100 utterances", "language"),
        Metric("try_again_per_100", "Try-again phrases per 100 utterances", "language"),
        Metric("exact_match", "Exact match", "turn_level", percent=True),
        Metric(
            "positive_feedback",
            "Positive feedback",
            "turn_level",
            percent=True,
            depends_on=("positive_answers",),
        ),
        Metric("sim", "Sim(â, a*)", "turn_level", percent=True),
        Metric(
            "sim_neg_fb",
            "Sim(â, a*) −FB",
            "turn_level",
            percent=True,
            depends_on=("sim_neg_fb",),
        ),
    )
}
"""Every metric, in the order of a results row (and of the wide CSV file's columns)."""

ESTIMATED: tuple[str, ...] = tuple(key for key, m in METRICS.items() if m.estimate)
"""The keys of the metrics with bootstrap intervals, in row order."""
COUNTED: tuple[str, ...] = tuple(key for key, m in METRICS.items() if not m.estimate)
"""The keys of the metrics that are plain counts, in row order."""

GROUP_COUNTS = ("games", "successful_games", "turns", "clicks", "correct_clicks", "utterances")
"""Plain counts every row has besides its metrics."""
ANNOTATION_COUNTS = ("annotated_turns", "annotations", "negative_feedback_turns")
"""Plain counts of the rows of groups with annotations."""

AGREEMENT_VARIABLES = ("correctness", "action", "satisfaction")
"""The variables of an agreement row: â = a*, the annotated action a*, the satisfaction answer."""
AGREEMENT_MEASURES = ("percent", "fleiss_kappa", "krippendorff_alpha")
"""The estimates of each agreement variable (pairwise Cohen's κ has no interval)."""


def section_metrics(section: str) -> tuple[Metric, ...]:
    """The metrics a dashboard section shows, in row order (none for ``decoder``)."""
    if section not in SECTIONS:
        raise KeyError(section)
    return tuple(m for m in METRICS.values() if m.section == section)


INTERACTION: tuple[Metric, ...] = tuple(METRICS[s] for s in SECTIONS if s in METRICS)
"""The interaction metrics: each has a section (table and by-round figure) of its own."""
TURN_LEVEL = section_metrics("turn_level")
LANGUAGE = section_metrics("language")


def convention_fields(section_or_metric: str) -> tuple[str, ...]:
    """The convention fields a metric's (or, for a section, its metrics') numbers depend on.

    Any other key (``decoder``, ``agreement``…) depends on none: on the interval method only.
    """
    if section_or_metric in METRICS:
        return METRICS[section_or_metric].depends_on
    if section_or_metric not in SECTIONS:
        return ()
    fields: dict[str, None] = {}
    for metric in section_metrics(section_or_metric):
        fields.update(dict.fromkeys(metric.depends_on))
    return tuple(fields)
