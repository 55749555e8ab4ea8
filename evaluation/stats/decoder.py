"""The feedback decoder against annotated satisfaction (docs/metrics.md, "Feedback decoder").

The reference class of a turn comes from its annotated satisfaction through a mapping (a
parameter; ``DEFAULT_SATISFACTION_CLASSES`` is the default, see docs/protocols.md). Ternary
labels are compared with the three reference classes; binary labels with the reference
collapsed to two classes (``neutral`` counts as ``positive`` by default: "combining actual
positives and neutrals").

Confusion matrices have one row per reference class and one column per predicted class plus a
last ``unparseable`` column: an unparseable decoder answer is an error, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

POSITIVE, NEUTRAL, NEGATIVE, UNPARSEABLE = "positive", "neutral", "negative", "unparseable"
BINARY_CLASSES: tuple[str, ...] = (POSITIVE, NEGATIVE)
TERNARY_CLASSES: tuple[str, ...] = (POSITIVE, NEUTRAL, NEGATIVE)
CLASSES_BY_KIND: dict[str, tuple[str, ...]] = {"binary": BINARY_CLASSES, "ternary": TERNARY_CLASSES}
DEFAULT_SATISFACTION_CLASSES: dict[str, str] = {
    "yes": POSITIVE,
    "yes_incomplete": NEUTRAL,
    "yes_wrong": NEUTRAL,
    "no": NEGATIVE,
}
NORMALIZATIONS = ("total", "row", "column")


def validate_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """A satisfaction→class mapping, checked: known classes only."""
    clean = dict(mapping)
    unknown = {c for c in clean.values() if c not in TERNARY_CLASSES}
    if unknown:
        raise ValueError(
            f"satisfaction mapping names unknown classes {sorted(unknown)}; "
            f"use {list(TERNARY_CLASSES)}"
        )
    return clean


def reference_classes(
    satisfaction: Iterable[str],
    kind: str,
    mapping: Mapping[str, str] = DEFAULT_SATISFACTION_CLASSES,
    neutral_as: str = POSITIVE,
) -> np.ndarray:
    """Reference class of each annotation for labels of ``kind``; "" where unmapped (no answer)."""
    if kind not in CLASSES_BY_KIND:
        raise ValueError(f"unknown label kind {kind!r}")
    mapping = validate_mapping(mapping)
    classes = np.array([mapping.get(value, "") for value in satisfaction], dtype=object)
    if kind == "binary":
        if neutral_as not in BINARY_CLASSES:
            raise ValueError(f"neutral_as must be one of {BINARY_CLASSES}")
        classes[classes == NEUTRAL] = neutral_as
    return classes


def confusion_matrix(
    reference: Sequence[str],
    predicted: Sequence[str],
    classes: Sequence[str],
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Weighted counts: rows = reference classes, columns = classes + ``unparseable``."""
    columns = [*classes, UNPARSEABLE]
    rows = _codes(np.asarray(reference, dtype=object), list(classes), "reference class")
    cols = _codes(np.asarray(predicted, dtype=object), columns, "decoder label")
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
    matrix = np.zeros((len(classes), len(columns)))
    np.add.at(matrix, (rows, cols), w)
    return matrix


def _codes(values: np.ndarray, allowed: list[str], what: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(allowed)}
    try:
        return np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values))
    except KeyError as error:
        raise ValueError(f"{what} {error.args[0]!r} is not one of {allowed}") from None


def normalize_confusion(matrix: np.ndarray, by: str) -> np.ndarray:
    """Counts divided by the total, by each row's sum or by each column's sum (NaN on 0/0)."""
    matrix = np.asarray(matrix, dtype=float)
    if by == "total":
        divisor = matrix.sum()
    elif by == "row":
        divisor = matrix.sum(axis=1, keepdims=True)
    elif by == "column":
        divisor = matrix.sum(axis=0, keepdims=True)
    else:
        raise ValueError(f"normalize by one of {NORMALIZATIONS}, not {by!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(divisor > 0, matrix / divisor, np.nan)


CLASS_MEASURES = ("precision", "recall", "f1")
"""The per-class measures of a decoder block (besides its accuracy), in ``summary_statistic``'s
order."""


def summary_names(classes: Sequence[str]) -> list[str]:
    """Names of the values ``summary_statistic`` returns, in order."""
    names = ["accuracy"]
    for measure in CLASS_MEASURES:
        names.extend(f"{measure}:{c}" for c in classes)
    return names


def summary_statistic(n_classes: int):
    """Accuracy and per-class precision, recall and F1 from flattened confusion sums.

    Input (..., n_classes · (n_classes + 1)) row-major confusion matrices; output
    (..., 1 + 3 · n_classes) in ``summary_names`` order. Vectorized on leading axes, so it serves
    both point estimates and bootstrap resamples. Undefined values (0/0) are NaN.
    """
    width = n_classes + 1

    def evaluate(sums: np.ndarray) -> np.ndarray:
        matrix = sums.reshape(*sums.shape[:-1], n_classes, width)
        diagonal = np.diagonal(matrix[..., :, :n_classes], axis1=-2, axis2=-1)
        row = matrix.sum(axis=-1)
        column = matrix.sum(axis=-2)[..., :n_classes]
        total = matrix.sum(axis=(-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            accuracy = diagonal.sum(axis=-1) / total
            precision = diagonal / column
            recall = diagonal / row
            f1 = 2 * diagonal / (row + column)
        values = np.concatenate([accuracy[..., None], precision, recall, f1], axis=-1)
        values[~np.isfinite(values)] = np.nan
        return values

    return evaluate


def classification_summary(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy and per-class precision/recall/F1 of a matrix from ``confusion_matrix``."""
    values = summary_statistic(len(classes))(np.asarray(matrix, dtype=float).ravel())
    return dict(zip(summary_names(classes), (float(v) for v in values), strict=True))
