"""The metric registry names exactly what the study engine computes, and nothing else."""

from __future__ import annotations

import dataclasses

import pytest

from evaluation.stats import columns, conventions, inputs, metrics
from evaluation.stats import study as engine

from .test_stats_study import random_group, study_of

ROW_KEYS = {"round", "system", "similarity", "decoder"}
"""Row fields that are neither metrics nor plain counts."""


def computed(*groups) -> dict:
    params = inputs.MetricParameters(resamples=50, seed=3)
    return engine.compute_study(study_of(*groups), params, workers=1)


def without_annotations(group: inputs.GroupInput) -> inputs.GroupInput:
    return dataclasses.replace(group, annotations=None, labels={})


def test_a_row_holds_every_registered_metric_and_count_and_nothing_else():
    row = computed(random_group(1))["rows"][0]
    registered = set(metrics.METRICS) | set(metrics.GROUP_COUNTS) | set(metrics.ANNOTATION_COUNTS)
    assert set(row) - ROW_KEYS == registered
    for key in metrics.ESTIMATED:
        assert set(row[key]) == {"value", "ci"}, key
    for key in (*metrics.COUNTED, *metrics.GROUP_COUNTS, *metrics.ANNOTATION_COUNTS):
        assert isinstance(row[key], int | float), key


def test_the_bootstrapped_metrics_are_the_registered_estimates():
    group = random_group(2)
    built = columns.group_columns(group, study_of(group), inputs.MetricParameters())
    plain = [name for name in built.columns.names() if ":" not in name]
    assert sorted(plain) == sorted(metrics.ESTIMATED)
    assert {name.split(":")[0] for name in built.columns.names() if ":" in name} == {
        "decoder",
        "agreement",
    }


def test_without_annotations_a_row_has_every_metric_but_the_turn_level_section():
    row = computed(without_annotations(random_group(3)))["rows"][0]
    expected = {key for key, m in metrics.METRICS.items() if m.section != "turn_level"}
    assert set(row) - ROW_KEYS == expected | set(metrics.GROUP_COUNTS)
    assert {m.key for m in metrics.TURN_LEVEL} == {
        "exact_match",
        "positive_feedback",
        "sim",
        "sim_neg_fb",
    }


def test_agreement_rows_have_the_registered_variables_and_measures():
    (agreement,) = computed(random_group(4))["agreement"]
    variables = set(agreement) - {"round", "system", "items", "annotators", "annotations"}
    assert variables == set(metrics.AGREEMENT_VARIABLES)
    for variable in metrics.AGREEMENT_VARIABLES:
        assert set(metrics.AGREEMENT_MEASURES) <= set(agreement[variable]), variable


def test_every_metric_belongs_to_a_section_and_depends_on_convention_fields_only():
    fields = {f.name for f in dataclasses.fields(conventions.Conventions)} - {"name", "interval"}
    for metric in metrics.METRICS.values():
        assert metric.section in metrics.SECTIONS, metric.key
        assert set(metric.depends_on) <= fields, metric.key
    assert [m.key for m in metrics.INTERACTION] == [
        "success_rate",
        "turns_per_game",
        "click_accuracy",
    ]
    assert [m.key for m in metrics.LANGUAGE] == [
        "vocabulary_size",
        "utterance_length",
        "reset_phrases",
        "try_again_phrases",
        "reset_per_100",
        "try_again_per_100",
    ]
    assert metrics.section_metrics("decoder") == ()
    with pytest.raises(KeyError):
        metrics.section_metrics("agreement")


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("turn_level", ("positive_answers", "sim_neg_fb")),
        ("language", ("tokens", "length_per")),
        ("utterance_length", ("tokens", "length_per")),
        ("vocabulary_size", ("tokens",)),
        ("positive_feedback", ("positive_answers",)),
        ("success_rate", ()),
        ("decoder", ()),
        ("agreement", ()),
    ],
)
def test_convention_fields_of_a_section_are_those_of_its_metrics(key, fields):
    assert metrics.convention_fields(key) == fields
