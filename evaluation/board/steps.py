"""The steps of a round on the round board, as values: what each shows and its state.

States: ``done`` (nothing left to do), ``running`` (a run is under way or the lobby is open),
``ready`` (its button works), ``waiting`` (its button is disabled; ``blocked`` says why).
``evaluation.board.selectors`` builds them from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from annotation.models import AnnotationBatch
from evaluation.models import MetricRun
from games.models import Round, System
from models_svc.models import DecodeRun, TrainingRun
from models_svc.selectors import LabelCoverage

if TYPE_CHECKING:
    from evaluation.board.seed import SeedStep

DONE, RUNNING, READY, WAITING = "done", "running", "ready", "waiting"
ACTIVE_TRAINING = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
ACTIVE_DECODING = (DecodeRun.Status.QUEUED, DecodeRun.Status.RUNNING)


@dataclass(frozen=True)
class SystemGames:
    name: str
    ended: int
    playing: int
    planned: int
    decode_when_lobby_closes: bool
    kind: str  # the feedback kind its name says (B-… binary, T-… ternary), or ""


@dataclass(frozen=True)
class CollectStep:
    lobby_open: bool
    systems: list[SystemGames]
    ended: int

    @property
    def state(self) -> str:
        if self.lobby_open:
            return RUNNING
        return DONE if self.ended else WAITING


@dataclass(frozen=True)
class DecodeStep:
    coverage: list[LabelCoverage]
    runs: list[DecodeRun]
    blocked: str

    @property
    def active(self) -> DecodeRun | None:
        return next((run for run in self.runs if run.status in ACTIVE_DECODING), None)

    @property
    def state(self) -> str:
        if self.active is not None:
            return RUNNING
        if self.coverage and all(c.complete for c in self.coverage):
            return DONE
        return WAITING if self.blocked else READY


@dataclass(frozen=True)
class BatchRow:
    batch: AnnotationBatch
    complete: int
    games: int


@dataclass(frozen=True)
class AnnotateTarget:
    system: System
    blocked: str


@dataclass(frozen=True)
class AnnotateStep:
    batches: list[BatchRow]
    targets: list[AnnotateTarget]

    @property
    def state(self) -> str:
        """Done once every batch's games are fully annotated; under way before."""
        if self.batches:
            annotated = all(row.games and row.complete >= row.games for row in self.batches)
            return DONE if annotated else RUNNING
        return READY if any(not t.blocked for t in self.targets) else WAITING


@dataclass(frozen=True)
class MetricsStep:
    latest: MetricRun | None
    active: MetricRun | None
    stale: bool
    blocked: str
    warning: str

    @property
    def state(self) -> str:
        """A round with nothing to compute (no ended game) waits, whatever earlier runs did."""
        if self.active is not None:
            return RUNNING
        if self.blocked:
            return WAITING
        return DONE if self.latest is not None and not self.stale else READY


@dataclass(frozen=True)
class TrainTarget:
    system: System
    latest: TrainingRun | None
    finished: TrainingRun | None  # the best finished run: the next round deploys it by default
    blocked: str
    ranked: tuple[TrainingRun, ...] = ()  # every finished run, the best first
    undecoded: tuple[int, ...] = ()  # rounds it learns from that still lack its labels


@dataclass(frozen=True)
class TrainStep:
    targets: list[TrainTarget]
    bases: list[str]
    blocked: str

    @property
    def state(self) -> str:
        if any(t.latest is not None and t.latest.status in ACTIVE_TRAINING for t in self.targets):
            return RUNNING
        if self.targets and all(t.finished is not None for t in self.targets):
            return DONE
        if self.blocked or all(t.blocked for t in self.targets):
            return WAITING
        return READY


@dataclass(frozen=True)
class NextRoundStep:
    next_round: Round | None
    blocked: str

    @property
    def state(self) -> str:
        if self.next_round is not None:
            return DONE
        return WAITING if self.blocked else READY


@dataclass(frozen=True)
class RoundBoard:
    round: Round
    is_last: bool
    collect: CollectStep
    decode: DecodeStep
    annotate: AnnotateStep
    metrics: MetricsStep
    train: TrainStep
    next_round: NextRoundStep
    steps: list[tuple[str, str, str]] = field(default_factory=list)
    seed: SeedStep | None = None  # round 0 only: D₀, the seed run and π₀'s deployment

    @property
    def next_step(self) -> str:
        """The title of the first step (annotation aside) that is not done, or ``""``."""
        for key, title, state in self.steps:
            if key != "annotate" and state != DONE:
                return title
        return ""

    @property
    def active(self) -> bool:
        return any(
            state == RUNNING for key, _, state in self.steps if key not in ("collect", "annotate")
        )
