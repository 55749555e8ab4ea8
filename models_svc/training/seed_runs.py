"""π₀ from the seed set: train the initial policy on D₀ alone and deploy it as round 0's policy.

A study starts from a policy fine-tuned on human–human games (the study's seed recipe: D₀ only,
about 40 epochs). A **seed run** is an ordinary ``TrainingRun`` whose manifest is the seed set
D₀ itself (role ``seed``), objective FFT, starting from the pretrained base, with no rehearsal
(it trains on D₀ already); it is executed by the same worker task as every run. Its system name
is ``SEED_RUN_SYSTEM`` (π₀ is no one system's: every model system of round 0 starts from it).

Deploying sets the policy of every model system of round 0 (``CONTROL`` included) to the run's
``hf:BASE+lora:ADAPTER`` and registers it as round 0's checkpoint. It is refused once a model
system of round 0 has played a game: the turns logged so far were sampled from another policy.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from config import heartbeat
from games.models import Game, Round, Study, System

from ..models import ModelCheckpoint, TrainingManifest, TrainingRun
from .config import PRESETS, training_config
from .manifests import build_validation_manifest
from .runs import base_checkpoint
from .selectors import TrainingError, seed_set_for_run

SEED_RUN_SYSTEM = "π₀"
# The study's seed recipe (D₀ alone, about 40 epochs) and a shorter one for the tiny preset.
SEED_EPOCHS = {"paper": 40, "tiny": 10}


def seed_run_overrides(preset: str = "paper") -> dict:
    """The settings a seed run starts from, before ``settings.TRAINING`` and the run's own."""
    return {**PRESETS[preset], "epochs": SEED_EPOCHS[preset], "rehearse_seed_set": False}


def round_zero_model_systems(study: Study) -> list[System]:
    """The systems of round 0 that act with a policy (all but HH), by name."""
    return list(
        System.objects.filter(round__study=study, round__index=0)
        .exclude(name=System.HUMAN)
        .select_related("round")
        .order_by("name")
    )


def _anchor(study: Study) -> System:
    """The round-0 system whose prompt format and policy a seed run follows (CONTROL first)."""
    systems = round_zero_model_systems(study)
    if not Round.objects.filter(study=study, index=0).exists():
        raise TrainingError(f"study {study.name!r} has no round 0")
    if not systems:
        raise TrainingError(
            f"round 0 of study {study.name!r} has no model system to deploy π₀ to "
            "(add CONTROL or a B-/T- system first)"
        )
    return next((s for s in systems if s.name == System.CONTROL), systems[0])


def seed_runs(study: Study):
    """The study's seed runs, newest first."""
    return TrainingRun.objects.filter(
        study=study, manifest__role=TrainingManifest.Role.SEED
    ).order_by("-created_at", "-pk")


def seed_run_refusal(study: Study) -> str | None:
    """Why a seed run cannot be launched now (round 0, its systems, D₀ in their format, a seed
    run under way), or None; the base checkpoint is checked at launch."""
    try:
        seed_set_for_run(study, _anchor(study).prompt_format)
    except TrainingError as error:
        return str(error)
    active = seed_runs(study).filter(status__in=heartbeat.ACTIVE).first()
    if active is not None:
        return f"seed run #{active.pk} is under way (epoch {active.epoch})"
    return None


def deploy_refusal(run: TrainingRun) -> str | None:
    """Why ``run`` cannot become round 0's policy, or None (see ``deploy_seed_policy``)."""
    if run.manifest.role != TrainingManifest.Role.SEED:
        return f"training run {run.pk} is not a seed run (it trained on interactions)"
    if run.status != TrainingRun.Status.DONE or not run.policy_spec:
        return f"seed run {run.pk} is {run.status}: only a finished run deploys"
    try:
        systems = round_zero_model_systems(run.study)
        _anchor(run.study)
    except TrainingError as error:
        return str(error)
    played = Game.objects.filter(system__in=systems).count()
    if played:
        return (
            f"round 0 of study {run.study.name!r} already has {played} game(s) of its model "
            "systems: their turns were logged under another policy, so π₀ can no longer change"
        )
    other = [s.name for s in systems if s.prompt_format != run.prompt_format]
    if other:
        return (
            f"{', '.join(other)} act in another prompt format than seed run {run.pk} "
            f"({run.prompt_format!r}): build D₀ in their format and train π₀ for it"
        )
    return None


def launch_seed_run(
    study: Study,
    *,
    base: str = "",
    overrides: dict | None = None,
    preset: str = "paper",
    user=None,
) -> TrainingRun:
    """Validate, store and queue a seed run: FFT on D₀ (in the prompt format of round 0's
    CONTROL, else of its first model system) from the base checkpoint. Raises TrainingError
    (nothing written) when round 0, its model systems, D₀ or the base is missing."""
    with transaction.atomic():
        anchor = _anchor(study)
        active = seed_runs(study).filter(status__in=heartbeat.ACTIVE).first()
        if active is not None:
            raise TrainingError(f"seed run #{active.pk} is under way (epoch {active.epoch})")
        config = training_config("fft", seed_run_overrides(preset), settings.TRAINING, overrides)
        base_spec, _ = base_checkpoint(anchor, base)
        manifest = seed_set_for_run(study, anchor.prompt_format)
        run = TrainingRun(
            study=study,
            round_index=0,
            system_name=SEED_RUN_SYSTEM,
            objective=TrainingRun.Objective.FFT,
            base_checkpoint=base_spec,
            prompt_format=manifest.prompt_format,
            manifest=manifest,
            validation_manifest=build_validation_manifest(study, manifest.prompt_format),
            hyperparameters=config.as_dict(),
            requested_by=user,
        )
        heartbeat.enqueue(run)
    return run


@transaction.atomic
def deploy_seed_policy(run: TrainingRun) -> list[System]:
    """Make a finished seed run's adapter the policy of every model system of round 0 (all or
    nothing). Refused (``deploy_refusal``) for another kind of run, an unfinished one, a round
    0 whose model systems have played, or one whose systems act in another prompt format."""
    refusal = deploy_refusal(run)
    if refusal is not None:
        raise TrainingError(refusal)
    systems = round_zero_model_systems(run.study)
    spec = run.policy_spec
    System.objects.filter(pk__in=[s.pk for s in systems]).update(policy_checkpoint=spec)
    ModelCheckpoint.objects.update_or_create(
        kind=ModelCheckpoint.Kind.POLICY,
        spec=spec,
        round=systems[0].round,
        defaults={"training_run": run, "notes": "π₀ (seed run) of round 0"},
    )
    return [System.objects.get(pk=s.pk) for s in systems]


__all__ = [
    "SEED_RUN_SYSTEM",
    "deploy_refusal",
    "deploy_seed_policy",
    "launch_seed_run",
    "seed_run_overrides",
    "seed_run_refusal",
    "seed_runs",
]
