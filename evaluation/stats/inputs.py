"""What a study's metrics are computed from: its groups as plain arrays, and the run's parameters.

``evaluation.selectors.study_input`` builds a ``StudyInput`` from the database (one
``GroupInput`` per round × system with ended games); ``MetricParameters`` holds everything else
the numbers depend on. ``system_sort_key`` is the order groups and tables list systems in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from . import decoder as dec
from .bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, METHODS
from .conventions import PLATFORM, Conventions

STATS_VERSION = "1"
SYSTEM_ORDER = ("B-FFT", "T-FFT", "B-RL", "T-RL", "B-KTO", "T-KTO")
LATE_SYSTEMS = ("CONTROL", "HH")
IDENTITY_SIMILARITY = "identity similarity: no embeddings"
EMBEDDING_SIMILARITY = "cosine similarity of image embeddings"
SAMPLERS = ("fast", "scipy")
"""How resampled games are drawn: ``fast`` (small integer type) or ``scipy`` (scipy's draws)."""


def system_sort_key(name: str) -> tuple[int, int, str]:
    """Paper order (B-FFT, T-FFT, …), other systems alphabetically, then CONTROL and HH."""
    if name in SYSTEM_ORDER:
        return (0, SYSTEM_ORDER.index(name), name)
    if name in LATE_SYSTEMS:
        return (2, LATE_SYSTEMS.index(name), name)
    return (1, 0, name)


@dataclass(frozen=True)
class AnnotationInput:
    """Annotations of a group's turns: ``turn`` indexes the group's turns; masks are (a × K)."""

    turn: np.ndarray
    rater: np.ndarray
    select: np.ndarray
    deselect: np.ndarray
    satisfaction: np.ndarray


@dataclass(frozen=True)
class LabelInput:
    """One decoder label per labelled turn: ``turn`` indexes the group's turns."""

    turn: np.ndarray
    label: np.ndarray
    decoder: str = ""


@dataclass(frozen=True)
class GroupInput:
    """The ended games of one round × system.

    Masks are over each game's context in listener order (K columns; shorter contexts padded
    with False). ``context`` holds indices into ``StudyInput.tangrams`` (−1 for padding).
    ``turn_game`` gives each turn's game position (0 … n_games − 1).
    """

    round_index: int
    system: str
    successful: np.ndarray
    targets: np.ndarray
    context: np.ndarray
    turn_game: np.ndarray
    before: np.ndarray
    after: np.ndarray
    utterances: Sequence[str]
    annotations: AnnotationInput | None = None
    labels: Mapping[str, LabelInput] = field(default_factory=dict)

    @property
    def n_games(self) -> int:
        return int(len(self.successful))


@dataclass(frozen=True)
class StudyInput:
    name: str
    groups: Sequence[GroupInput]
    tangrams: Sequence[str] = ()
    similarity: np.ndarray | None = None
    similarity_label: str = IDENTITY_SIMILARITY


@dataclass(frozen=True)
class MetricParameters:
    """Everything a run's numbers depend on besides the data.

    ``method`` None means the interval method of ``conventions`` (BCa on the platform,
    percentile under the paper's); ``validated`` returns the parameters with it filled in.
    """

    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE
    method: str | None = None
    satisfaction_classes: Mapping[str, str] = field(
        default_factory=lambda: dict(dec.DEFAULT_SATISFACTION_CLASSES)
    )
    binary_neutral_as: str = dec.POSITIVE
    sampler: str = "fast"
    conventions: Conventions = PLATFORM

    @property
    def interval_method(self) -> str:
        """The interval method used: ``method``, else the conventions' one."""
        return self.conventions.interval if self.method is None else self.method

    def validated(self) -> MetricParameters:
        if not isinstance(self.conventions, Conventions):
            raise ValueError(f"conventions must be a Conventions, got {self.conventions!r}")
        if self.method is None:
            return replace(self, method=self.conventions.interval).validated()
        if not 1 <= int(self.resamples) <= 1_000_000:
            raise ValueError(f"resamples must be between 1 and 1,000,000, got {self.resamples}")
        if not 0 <= int(self.seed) < 2**63:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if not 0 < float(self.confidence) < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        dec.validate_mapping(self.satisfaction_classes)
        if self.binary_neutral_as not in dec.BINARY_CLASSES:
            raise ValueError(f"binary_neutral_as must be one of {dec.BINARY_CLASSES}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        return self

    def as_dict(self) -> dict:
        return {
            "resamples": int(self.resamples),
            "seed": int(self.seed),
            "confidence": float(self.confidence),
            "method": self.interval_method,
            "satisfaction_classes": dict(self.satisfaction_classes),
            "binary_neutral_as": self.binary_neutral_as,
            "sampler": self.sampler,
            "conventions": self.conventions.name,
            "stats_version": STATS_VERSION,
        }
