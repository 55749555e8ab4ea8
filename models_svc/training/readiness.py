"""Whether a system can train now, and whether the next round can open: the one rule of each.

``training_refusal`` decides every refusal of a training launch that can be told before the
manifests are built (the system, its feedback kind, a run already queued or running for that
system and round, the labels of the rounds it learns from, the base checkpoint);
``launch_training_run`` raises it, and the round board, the Training page, ``train_policy`` and
the API show its reason. ``labels_refusal`` is the label readiness rule inside it (which rounds a
system learns from, and whether they are decoded enough). ``next_round_refusal`` is the rule of
"Open round N+1" that the board, the Training page and ``open_next_round`` share.
"""

from __future__ import annotations

from django.conf import settings

from config import heartbeat
from games.models import Round, Study, System

from ..checkpoint_paths import confined_spec
from ..interfaces import CheckpointError
from ..models import ModelCheckpoint, TrainingRun
from ..registry import parse_spec
from .labels import label_readiness
from .selection import finished_run
from .selectors import TrainingError, decoder_kind, training_system

UNUSABLE_CHECKPOINT = (
    ModelCheckpoint.Status.FAILED,
    ModelCheckpoint.Status.INCOMPATIBLE,
    ModelCheckpoint.Status.MISSING,
)


def labels_refusal(study: Study, round_index: int, system: System) -> str:
    """Why the system's training set is not ready ("" when it is): in every round it learns
    from, the decodable turns of the games it learns from must all carry a label of the
    system's decoder in its kind (each turn's newest version: ``labels.label_readiness``), and
    at least one such turn must exist."""
    return label_readiness(study, round_index, system).refusal or ""


def active_run(study: Study, round_index: int, system_name: str) -> TrainingRun | None:
    """The system's run of this round that is queued or running, if any."""
    return (
        TrainingRun.objects.filter(
            study=study,
            round_index=round_index,
            system_name=system_name,
            status__in=heartbeat.ACTIVE,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def _run_refusal(run: TrainingRun) -> str:
    if heartbeat.is_stale(run):
        return (
            f"run #{run.pk} is {run.status} but stale (no worker has reported on it): resume it "
            "on its page"
        )
    return f"run #{run.pk} is under way (epoch {run.epoch}, step {run.step}/{run.total_steps})"


def base_text(system: System, base: str = "") -> str:
    """The checkpoint a run starts from, as given: ``base``, else the system's own ``hf:``
    policy, else ``RESPECT_TRAINING_BASE`` (which stands in for a policy without weights, empty
    or ``random``), else the system's policy as it is."""
    own = system.policy_checkpoint.strip()
    return base or (own if own.startswith("hf:") else "") or settings.TRAINING_BASE or own


def base_refusal(system: System, base: str = "") -> str:
    """Why the run cannot start from ``base`` (or the system's own policy, or
    ``RESPECT_TRAINING_BASE``): "" when it can. A checkpoint registered as failed, incompatible
    or missing is refused with its check's message."""
    text = base_text(system, base)
    try:
        spec = parse_spec(text or "random", "policy")
    except CheckpointError as error:
        return str(error)
    if spec.backend != "hf":
        return (
            f"system {system.name} (round {system.round.index}) acts with policy "
            f"{text or 'random'!r}, which has no weights to train: give a base checkpoint "
            "(the Base field, or --base hf:PATH: a local image-text-to-text checkpoint, e.g. one "
            "written by make_tiny_checkpoint) or set RESPECT_TRAINING_BASE"
        )
    try:
        spec = confined_spec(spec)
    except CheckpointError as error:
        return f"base checkpoint: {error}"
    bad = (
        ModelCheckpoint.objects.filter(
            kind=ModelCheckpoint.Kind.POLICY,
            spec__in=[f"hf:{spec.path}", text],
            status__in=UNUSABLE_CHECKPOINT,
        )
        .order_by("-checked_at", "-pk")
        .first()
    )
    if bad is not None:
        return (
            f"base checkpoint {bad.spec} cannot be used (Checkpoints page: "
            f"{bad.get_status_display()}): {bad.status_message or 'check it again'}"
        )
    return ""


def training_refusal(
    study: Study, round_index: int, system_name: str, *, base: str | None = ""
) -> TrainingError | None:
    """Why ``system_name`` of round ``round_index`` cannot start a training run now (None when
    it can), with the field at fault. ``base`` as the launch form gives it ("" means the
    system's own policy); None leaves the base out (a page that offers a choice of bases)."""
    if system_name in (System.HUMAN, System.CONTROL):
        return TrainingError(
            f"round {round_index} has no model system {system_name!r} to train (HH has human "
            "listeners; CONTROL is redeployed unchanged)",
            field="system_name",
        )
    try:
        system = training_system(study, round_index, system_name)
        decoder_kind(system_name)
    except TrainingError as error:
        return TrainingError(error.message, field="system_name")
    running = active_run(study, round_index, system_name)
    if running is not None:
        return TrainingError(_run_refusal(running), field="system_name")
    labels = labels_refusal(study, round_index, system)
    if labels:
        return TrainingError(labels, field="round_index")
    if base is not None:
        reason = base_refusal(system, base)
        if reason:
            return TrainingError(reason, field="base")
    return None


def trained_systems(round_: Round) -> list[System]:
    """The round's systems that must be trained before the next round opens."""
    return [
        s for s in round_.systems.order_by("name") if s.name not in (System.HUMAN, System.CONTROL)
    ]


def next_round_refusal(study: Study, from_round: int) -> str:
    """Why round ``from_round + 1`` cannot be opened ("" when it can)."""
    current = Round.objects.filter(study=study, index=from_round).first()
    if current is None:
        return f"study {study.name!r} has no round {from_round}"
    if Round.objects.filter(study=study, index=from_round + 1).exists():
        return f"study {study.name!r} already has round {from_round + 1}"
    trained = trained_systems(current)
    if not trained:
        return "nothing to train: the round has no model system besides CONTROL and HH"
    missing = [s.name for s in trained if finished_run(study, from_round, s.name) is None]
    if missing:
        return f"train first: no finished run for {', '.join(missing)}"
    return ""
