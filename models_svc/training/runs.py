"""Training runs: launching (validated, all or nothing), executing on a gpu-batch worker with
progress and resumption, cancelling, and opening the next round with the trained policies.

Launching checks everything a run needs before writing anything: the system, its decoded
labels, a non-empty training set, p_t where the objective needs it, the base checkpoint. The
worker's task (``models_svc.tasks.train_policy_run``) calls ``execute_training_run``, which
claims the run with a heartbeat (``config.heartbeat``). A worker that was killed leaves the run
``running`` with a heartbeat that goes stale; the broker's redelivery, or Resume on the run's
page, then runs it again from after its last complete epoch checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import heartbeat
from games.live.lobby import set_lobby_open
from games.models import Round, Study, System
from games.rounds import RoundAlreadyOpen, SystemSpec, open_round

from ..checkpoint_paths import confined_spec
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
from .readiness import (
    base_refusal,
    base_text,
    next_round_refusal,
    trained_systems,
    training_refusal,
)
from .selection import chosen_runs, finished_run, ranked_runs, selection_key
from .selectors import (
    TrainingError,
    manifest_examples,
    objective_of,
    rehearsed_seed_set,
    training_system,
)

logger = logging.getLogger(__name__)


def base_checkpoint(system: System, base: str = "") -> tuple[str, str]:
    """``(hf:PATH, adapter)``: the pretrained checkpoint a run starts from and the system's
    current adapter (KTO continues from it). ``base`` overrides the system's policy."""
    reason = base_refusal(system, base)
    if reason:
        raise TrainingError(reason, field="base")
    spec = confined_spec(parse_spec(base_text(system, base), "policy"))
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
    """Validate, store the manifests and the run, and queue it on the gpu-batch queue once the
    transaction commits. Raises TrainingError (nothing is written) when the run cannot train:
    first ``training_refusal`` (the rule every entry point shows), then the refusals that need
    the training set (no examples of the labels the objective learns from, p_t missing)."""
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)  # one launch at a time per study
        refusal = training_refusal(study, round_index, system_name, base=base)
        if refusal is not None:
            raise refusal
        system = training_system(study, round_index, system_name)
        objective = objective or objective_of(system_name)
        try:
            config = training_config(objective, settings.TRAINING, overrides)
        except ValueError as error:  # the config's contract: a bad name or value, named
            raise TrainingError(str(error), field="overrides") from error
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
        run = TrainingRun(
            study=study,
            round_index=round_index,
            system_name=system_name,
            objective=objective,
            base_checkpoint=base_spec,
            initial_adapter=system_adapter if objective in CONTINUES_FROM_ADAPTER else "",
            prompt_format=system.prompt_format,
            manifest=manifest,
            seed_manifest=rehearsed_seed_set(study, system.prompt_format, config.rehearse_seed_set),
            validation_manifest=build_validation_manifest(study, system.prompt_format),
            hyperparameters=config.as_dict(),
            requested_by=user,
        )
        heartbeat.enqueue(run)
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
    """Train a queued (or interrupted) run to the end through ``config.heartbeat.execute``: a
    finished or cancelled run, or one that a live worker is training, is left as it is; any
    failure ends it ``failed`` with the message. A run started before resumes after its last
    complete epoch checkpoint. Records the selected adapter as a policy checkpoint of the run."""
    before = TrainingRun.objects.only("resumed", "started_at").get(pk=run_id)
    resumed = before.resumed + int(before.started_at is not None)
    return heartbeat.execute(
        TrainingRun, run_id, _train, reset={"resumed": resumed}, on_done=_record_checkpoint
    )


def _train(run: TrainingRun, lease: str) -> dict:
    from .trainer import TrainingCancelled, train

    try:
        result = train(training_job(run), DatabaseProgress(run.pk, lease))
    except TrainingCancelled as cancelled:
        raise heartbeat.RunCancelled(str(cancelled)) from cancelled
    return {
        "output_adapter": result.adapter,
        "selected": {k: v for k, v in result.selected.items() if k != "step_losses"},
        "diagnostics": result.diagnostics,
    }


def _record_checkpoint(run: TrainingRun) -> None:
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


@transaction.atomic
def open_next_round(
    study: Study, from_round: int, chosen: Mapping[str, int] | None = None
) -> Round:
    """Round ``from_round + 1``: each trained system with its run's adapter (the run ``chosen``
    names for it, else its best finished run), CONTROL with the round-0 policy, HH again if the
    round had it; decoders and prompt formats carried over. The lobbies of this round and earlier
    ones close. Refuses with ``next_round_refusal``'s reason (the board's and the Training
    page's), or when a chosen run is not one of the system's finished runs."""
    refusal = next_round_refusal(study, from_round)
    if refusal:
        raise TrainingError(f"cannot open round {from_round + 1}: {refusal}")
    current = Round.objects.get(study=study, index=from_round)
    systems = list(current.systems.order_by("name"))
    trained = trained_systems(current)
    runs = chosen_runs(study, from_round, [s.name for s in trained], chosen or {})
    control = _round_zero_control(study)
    specs = []
    for system in systems:
        source = control if system.name == System.CONTROL else system
        if source is None:  # the control system, without a round-0 control to copy
            continue
        run = runs.get(system.name)
        specs.append(
            SystemSpec(
                name=system.name,
                policy_checkpoint=run.policy_spec if run else source.policy_checkpoint,
                decoder=system.decoder,
                prompt_format=source.prompt_format,
                description=system.description,
            )
        )
    try:
        next_round = open_round(
            study,
            from_round + 1,
            specs,
            notes=f"opened from round {from_round}",
            reuse_configs=current.reuse_configs,
        )
    except RoundAlreadyOpen as error:  # opened by a concurrent request since the check above
        raise TrainingError(error.message) from error
    for spec in specs:
        run = runs.get(spec.name)
        if run is not None:
            ModelCheckpoint.objects.update_or_create(
                kind=ModelCheckpoint.Kind.POLICY,
                spec=spec.policy_checkpoint,
                round=next_round,
                defaults={"training_run": run, "notes": f"{spec.name} of round {next_round.index}"},
            )
    # The new round replaces the old ones in live play: their lobbies close (workers still
    # waiting are paid for their wait; games in play go on).
    for old in Round.objects.filter(study=study, index__lte=from_round, lobby_open=True):
        set_lobby_open(old, False)
    return next_round


def _round_zero_control(study: Study) -> System | None:
    round_zero = System.objects.filter(round__study=study, round__index=0)
    return (
        round_zero.filter(name=System.CONTROL).first()
        or round_zero.exclude(name=System.HUMAN).order_by("name").first()
    )


__all__ = [
    "TrainingError",
    "finished_run",
    "ranked_runs",
    "selection_key",
    "cancel_training_run",
    "execute_training_run",
    "launch_training_run",
    "open_next_round",
]
