"""Training runs: launching (validated, all or nothing), executing on a gpu worker with progress
and resumption, cancelling, and opening the next round with the trained policies.

Launching checks everything a run needs before writing anything: the system, its decoded
labels, a non-empty training set, p_t where the objective needs it, the base checkpoint. The
worker's task (``models_svc.tasks.train_policy_run``) calls ``execute_training_run``, which
claims the run with a heartbeat (``config.heartbeat``). A worker that was killed leaves the run
``running`` with a heartbeat that goes stale; the broker's redelivery, or Resume on the run's
page, then runs it again from after its last complete epoch checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import heartbeat
from games.models import Round, Study, System

from ..models import ModelCheckpoint, TrainingManifest, TrainingRun
from ..registry import parse_spec
from ..selectors import image_paths
from .config import (
    CONTINUES_FROM_ADAPTER,
    OBJECTIVE_LABELS,
    PROBABILITY_NEEDED,
    training_config,
)
from .logged import LoggedTurn, logged_problem
from .manifests import build_training_manifest, build_validation_manifest
from .progress import DatabaseProgress
from .selectors import (
    TrainingError,
    latest_manifest,
    manifest_examples,
    objective_of,
    training_system,
)

logger = logging.getLogger(__name__)


def base_checkpoint(system: System, base: str = "") -> tuple[str, str]:
    """``(hf:PATH, adapter)``: the pretrained checkpoint a run starts from and the system's
    current adapter (KTO continues from it). ``base`` overrides the system's policy."""
    text = base or system.policy_checkpoint or settings.TRAINING_BASE
    spec = parse_spec(text or "random", "policy")
    if spec.backend != "hf":
        raise TrainingError(
            f"system {system.name} (round {system.round.index}) acts with policy "
            f"{text or 'random'!r}, which has no weights to train: pass --base hf:PATH (a local "
            "image-text-to-text checkpoint, e.g. one written by make_tiny_checkpoint) or set "
            "RESPECT_TRAINING_BASE"
        )
    if not Path(spec.path).is_dir():
        raise TrainingError(f"base checkpoint {spec.path} is not a directory")
    current = parse_spec(system.policy_checkpoint or "random", "policy")
    adapter = current.adapter if current.backend == "hf" and not base else ""
    return f"hf:{spec.path}", adapter


def logged_turns(manifest: TrainingManifest) -> list[LoggedTurn]:
    """A training manifest's entries as the p_t requirement check reads them."""
    return [
        LoggedTurn(
            f"game {e['game']} turn id {e['turn']}",
            e["label"],
            e.get("p"),
            e.get("temperature"),
            e.get("constrained"),
        )
        for e in manifest.entries
    ]


def launch_training_run(
    study: Study,
    round_index: int,
    system_name: str,
    *,
    objective: str = "",
    base: str = "",
    overrides: dict | None = None,
    user=None,
) -> TrainingRun:
    """Validate, store the manifests and the run, and queue it on the gpu queue once the
    transaction commits. Raises TrainingError (nothing is written) when the run cannot train."""
    with transaction.atomic():
        system = training_system(study, round_index, system_name)
        objective = objective or objective_of(system_name)
        config = training_config(objective, settings.TRAINING, overrides)
        base_spec, system_adapter = base_checkpoint(system, base)
        manifest = build_training_manifest(study, round_index, system_name)
        problem = logged_problem(logged_turns(manifest), objective, PROBABILITY_NEEDED[objective])
        if problem:
            transaction.set_rollback(True)
            raise TrainingError(problem)
        labels = manifest.summary.get("labels", {})
        wanted = OBJECTIVE_LABELS[objective]
        if not any(labels.get(label) for label in wanted):
            transaction.set_rollback(True)
            raise TrainingError(
                f"the training set of {system_name} has no {' or '.join(wanted)} examples "
                f"for {objective.upper()} (labels: {labels or 'none'})"
            )
        run = TrainingRun.objects.create(
            study=study,
            round_index=round_index,
            system_name=system_name,
            objective=objective,
            base_checkpoint=base_spec,
            initial_adapter=system_adapter if objective in CONTINUES_FROM_ADAPTER else "",
            prompt_format=system.prompt_format,
            manifest=manifest,
            seed_manifest=latest_manifest(study, TrainingManifest.Role.SEED),
            validation_manifest=build_validation_manifest(study, system.prompt_format),
            hyperparameters=config.as_dict(),
            requested_by=user,
        )
        transaction.on_commit(
            lambda: current_app.send_task(
                "models_svc.tasks.train_policy_run", args=[run.pk], queue="gpu"
            )
        )
    return run


def run_dir(run: TrainingRun) -> Path:
    """The run's own folder, named by its unique folder id (never by the database's row id,
    which another database reuses)."""
    return Path(settings.TRAINING_DIR) / f"run-{run.folder}"


def run_identity(run: TrainingRun) -> dict[str, str]:
    """What the trainer records in the folder and checks before resuming from it."""
    return {
        "run": str(run.folder),
        "manifest": run.manifest.content_hash,
        "seed_manifest": run.seed_manifest.content_hash if run.seed_manifest else "",
        "validation_manifest": (
            run.validation_manifest.content_hash if run.validation_manifest else ""
        ),
    }


def training_job(run: TrainingRun, device: str = "auto"):
    """The trainer's job for a run, read from its manifests (worker code: imports torch)."""
    from .trainer import TrainingJob

    config_values = dict(run.hyperparameters)
    objective = config_values.pop("objective")
    train = manifest_examples(run.manifest)
    seed_set = manifest_examples(run.seed_manifest) if run.seed_manifest else []
    validation = manifest_examples(run.validation_manifest) if run.validation_manifest else []
    names = sorted({name for e in [*train, *seed_set, *validation] for name in e.images})
    paths = dict(zip(names, image_paths(names), strict=True))
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise TrainingError(f"no image file for tangram(s): {', '.join(missing[:10])}")
    return TrainingJob(
        base=parse_spec(run.base_checkpoint, "policy").path,
        out_dir=str(run_dir(run)),
        config=training_config(objective, config_values),
        train=train,
        image_paths=paths,  # type: ignore[arg-type]
        seed_set=seed_set,
        validation=validation,
        initial_adapter=run.initial_adapter,
        run_seed=f"run-{run.folder}",
        device=device,
        identity=run_identity(run),
    )


def execute_training_run(run_id: int) -> TrainingRun:
    """Train a queued (or interrupted) run to the end; a finished or cancelled run, or one that
    a live worker is training (``config.heartbeat``), is left as it is. A run started before
    resumes after its last complete epoch checkpoint. Records the selected adapter as a policy
    checkpoint of the run."""
    from .trainer import TrainingCancelled, train

    run = TrainingRun.objects.select_related(
        "manifest", "seed_manifest", "validation_manifest"
    ).get(pk=run_id)
    startable = [TrainingRun.Status.QUEUED, TrainingRun.Status.FAILED]
    lease = heartbeat.claim(TrainingRun, run_id, startable=startable)
    if lease is None:
        run.refresh_from_db()
        return run
    heartbeat.beat(
        TrainingRun, run_id, lease, error="", resumed=run.resumed + int(run.started_at is not None)
    )
    try:
        result = train(training_job(run), DatabaseProgress(run_id, lease))
    except heartbeat.LeaseLost:
        logger.warning("training run %s was taken over by another worker", run_id)
    except TrainingCancelled:
        heartbeat.finish(
            TrainingRun,
            run_id,
            lease,
            status=TrainingRun.Status.CANCELLED,
            finished_at=timezone.now(),
        )
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        heartbeat.finish(
            TrainingRun,
            run_id,
            lease,
            status=TrainingRun.Status.FAILED,
            error=str(exc)[:4000],
            finished_at=timezone.now(),
        )
        raise
    else:
        _finish(run_id, lease, result)
    run.refresh_from_db()
    return run


@transaction.atomic
def _finish(run_id: int, lease: str, result) -> None:
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.lease != lease:
        logger.warning("training run %s was taken over by another worker", run_id)
        return
    run.status = TrainingRun.Status.DONE
    run.output_adapter = result.adapter
    run.selected = {k: v for k, v in result.selected.items() if k != "step_losses"}
    run.diagnostics = result.diagnostics
    run.finished_at = timezone.now()
    run.lease = ""
    run.save(
        update_fields=[
            "status",
            "output_adapter",
            "selected",
            "diagnostics",
            "finished_at",
            "lease",
        ]
    )
    ModelCheckpoint.objects.get_or_create(
        kind=ModelCheckpoint.Kind.POLICY,
        spec=run.policy_spec,
        round=None,
        defaults={
            "training_run": run,
            "notes": f"{run.objective} {run.system_name} trained on rounds ≤ {run.round_index}",
        },
    )


def cancel_training_run(run: TrainingRun) -> TrainingRun:
    """Ask a queued or running run to stop (it stops before its next step)."""
    if run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        if run.status == TrainingRun.Status.QUEUED:
            TrainingRun.objects.filter(pk=run.pk).update(
                status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
            )
    run.refresh_from_db()
    return run


is_stale = heartbeat.is_stale


def resume_training_run(run: TrainingRun) -> TrainingRun:
    """Queue a stale run again; the worker resumes it after its last complete epoch."""
    if not heartbeat.requeue_if_stale(run):
        run.refresh_from_db()
        raise TrainingError(f"training run {run.pk} is {run.status} and not stale: nothing to do")
    return run


def finished_run(study: Study, round_index: int, system_name: str) -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(
            study=study,
            round_index=round_index,
            system_name=system_name,
            status=TrainingRun.Status.DONE,
        )
        .order_by("-finished_at", "-pk")
        .first()
    )


@transaction.atomic
def open_next_round(study: Study, from_round: int) -> Round:
    """Round ``from_round + 1``: each trained system with its run's adapter, CONTROL with the
    round-0 policy, HH again if the round had it; decoders and prompt formats carried over.
    Refuses, naming them, when a model system has no finished run."""
    current = Round.objects.filter(study=study, index=from_round).first()
    if current is None:
        raise TrainingError(f"study {study.name!r} has no round {from_round}")
    if Round.objects.filter(study=study, index=from_round + 1).exists():
        raise TrainingError(f"study {study.name!r} already has round {from_round + 1}")
    systems = list(current.systems.order_by("name"))
    trained = [s for s in systems if s.name not in (System.HUMAN, System.CONTROL)]
    runs = {s.name: finished_run(study, from_round, s.name) for s in trained}
    missing = sorted(name for name, run in runs.items() if run is None)
    if missing:
        raise TrainingError(
            f"cannot open round {from_round + 1}: no finished training run of round "
            f"{from_round} for {', '.join(missing)} (run train_policy --study {study.name} "
            f"--round {from_round} --system NAME)"
        )
    if not trained:
        raise TrainingError(f"round {from_round} has no model system to train")
    next_round = Round.objects.create(
        study=study,
        index=from_round + 1,
        reuse_configs=current.reuse_configs,
        notes=f"opened from round {from_round}",
    )
    control = _round_zero_control(study)
    for system in systems:
        source = control if system.name == System.CONTROL else system
        if source is None:  # the control system, without a round-0 control to copy
            continue
        run = runs.get(system.name)
        new = System.objects.create(
            round=next_round,
            name=system.name,
            policy_checkpoint=run.policy_spec if run else source.policy_checkpoint,
            decoder=system.decoder,
            prompt_format=source.prompt_format,
            description=system.description,
        )
        if run is not None:
            ModelCheckpoint.objects.update_or_create(
                kind=ModelCheckpoint.Kind.POLICY,
                spec=new.policy_checkpoint,
                round=next_round,
                defaults={"training_run": run, "notes": f"{new.name} of round {next_round.index}"},
            )
    return next_round


def _round_zero_control(study: Study) -> System | None:
    round_zero = System.objects.filter(round__study=study, round__index=0)
    return (
        round_zero.filter(name=System.CONTROL).first()
        or round_zero.exclude(name=System.HUMAN).order_by("name").first()
    )


__all__ = [
    "TrainingError",
    "cancel_training_run",
    "execute_training_run",
    "launch_training_run",
    "open_next_round",
]
