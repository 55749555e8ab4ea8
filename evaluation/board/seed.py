"""Round 0's seed step on the round board: the seed set D₀ per prompt format, the seed run that
trains π₀ on it, and deploying that run as round 0's policy.

The reasons a button is disabled are the services' own (``models_svc.training.seed_runs``):
``seed_run_refusal`` and ``deploy_refusal``.
"""

from __future__ import annotations

from dataclasses import dataclass

from games.models import Round
from models_svc.models import TrainingManifest, TrainingRun
from models_svc.training.seed_runs import (
    deploy_refusal,
    round_zero_model_systems,
    seed_run_refusal,
    seed_runs,
)
from models_svc.training.selectors import seed_manifest_for

from .steps import ACTIVE_TRAINING, DONE, READY, RUNNING, WAITING


@dataclass(frozen=True)
class SeedSetRow:
    prompt_format: str
    systems: list[str]
    manifest: TrainingManifest | None


@dataclass(frozen=True)
class SeedStep:
    seed_sets: list[SeedSetRow]
    latest: TrainingRun | None  # the newest seed run
    finished: TrainingRun | None  # the newest finished one
    deployed: bool  # round 0's model systems act with the finished run's adapter
    train_blocked: str
    deploy_blocked: str

    @property
    def state(self) -> str:
        if self.latest is not None and self.latest.status in ACTIVE_TRAINING:
            return RUNNING
        if self.deployed:
            return DONE
        return WAITING if self.train_blocked and self.deploy_blocked else READY


def seed_step(round_: Round) -> SeedStep | None:
    """The seed step of round 0 (None for later rounds)."""
    if round_.index != 0:
        return None
    study = round_.study
    systems = round_zero_model_systems(study)
    formats: dict[str, list[str]] = {}
    for system in systems:
        formats.setdefault(system.prompt_format, []).append(system.name)
    rows = [
        SeedSetRow(name, names, seed_manifest_for(study, name))
        for name, names in sorted(formats.items())
    ]
    runs = seed_runs(study).select_related("manifest")
    latest = runs.first()
    finished = runs.filter(status=TrainingRun.Status.DONE).first()
    deployed = finished is not None and all(
        s.policy_checkpoint == finished.policy_spec for s in systems
    )
    if finished is None:
        deploy_blocked = "train π₀ first: no finished seed run"
    elif deployed:
        deploy_blocked = f"round 0 already acts with seed run #{finished.pk}"
    else:
        deploy_blocked = deploy_refusal(finished) or ""
    return SeedStep(rows, latest, finished, deployed, seed_run_refusal(study) or "", deploy_blocked)


__all__ = ["DONE", "READY", "SeedSetRow", "SeedStep", "seed_step"]
