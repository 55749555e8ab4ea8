"""Decoder metrics against scikit-learn, and the satisfaction→class mapping."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion

from evaluation.stats import decoder as dec


def test_default_mapping_and_binary_collapse():
    answers = ["yes", "yes_incomplete", "yes_wrong", "no", ""]
    assert dec.reference_classes(answers, "ternary").tolist() == [
        "positive",
        "neutral",
        "neutral",
        "negative",
        "",
    ]
    assert dec.reference_classes(answers, "binary").tolist() == [
        "positive",
        "positive",
        "positive",
        "negative",
        "",
    ]
    assert dec.reference_classes(answers, "binary", neutral_as="negative").tolist()[1:3] == [
        "negative",
        "negative",
    ]
    custom = {"yes": "positive", "yes_incomplete": "positive", "yes_wrong": "negative"}
    assert dec.reference_classes(answers, "ternary", custom).tolist() == [
        "positive",
        "positive",
        "negative",
        "",
        "",
    ]
    with pytest.raises(ValueError, match="unknown classes"):
        dec.reference_classes(answers, "ternary", {"yes": "great"})


@pytest.mark.parametrize("kind", ["binary", "ternary"])
@pytest.mark.parametrize("weighted", [False, True])
def test_confusion_and_summary_match_sklearn(kind, weighted):
    rng = np.random.default_rng(11 if weighted else 12)
    classes = list(dec.CLASSES_BY_KIND[kind])
    n = 300
    reference = rng.choice(classes, n)
    predicted = rng.choice(
        [*classes, "unparseable"], n, p=[0.9 / len(classes)] * len(classes) + [0.1]
    )
    weights = rng.choice([1.0, 0.5, 1 / 3], n) if weighted else None
    labels = [*classes, "unparseable"]

    matrix = dec.confusion_matrix(reference, predicted, classes, weights)
    expected = sk_confusion(reference, predicted, labels=labels, sample_weight=weights)
    assert np.allclose(matrix, expected[: len(classes)], rtol=0, atol=1e-12)
    for ours, theirs in (("total", "all"), ("row", "true"), ("column", "pred")):
        normalized = sk_confusion(
            reference, predicted, labels=labels, sample_weight=weights, normalize=theirs
        )[: len(classes)]
        assert np.allclose(dec.normalize_confusion(matrix, ours), normalized, atol=1e-12)

    summary = dec.classification_summary(matrix, classes)
    precision, recall, f1, _ = precision_recall_fscore_support(
        reference, predicted, labels=classes, sample_weight=weights, zero_division=np.nan
    )
    assert summary["accuracy"] == pytest.approx(
        accuracy_score(reference, predicted, sample_weight=weights), abs=1e-12
    )
    for i, name in enumerate(classes):
        assert summary[f"precision:{name}"] == pytest.approx(precision[i], abs=1e-12)
        assert summary[f"recall:{name}"] == pytest.approx(recall[i], abs=1e-12)
        assert summary[f"f1:{name}"] == pytest.approx(f1[i], abs=1e-12)


def test_small_binary_matrix_by_hand():
    matrix = dec.confusion_matrix(
        ["positive", "positive", "negative", "negative", "positive"],
        ["positive", "negative", "negative", "unparseable", "positive"],
        dec.BINARY_CLASSES,
    )
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1]]
    summary = dec.classification_summary(matrix, dec.BINARY_CLASSES)
    assert summary["accuracy"] == 3 / 5
    assert summary["precision:positive"] == 1.0
    assert summary["recall:negative"] == 1 / 2
    assert summary["f1:positive"] == 2 * 2 / (3 + 2)


def test_unknown_labels_are_errors():
    with pytest.raises(ValueError, match="decoder label 'maybe'"):
        dec.confusion_matrix(["positive"], ["maybe"], dec.BINARY_CLASSES)
    with pytest.raises(ValueError, match="reference class 'neutral'"):
        dec.confusion_matrix(["neutral"], ["positive"], dec.BINARY_CLASSES)
    with pytest.raises(ValueError, match="normalize by"):
        dec.normalize_confusion(np.eye(2), "diagonal")
