"""Reads of the round board: for every round of a study, the state of each step from collecting
games to opening the next round, and, for a step that cannot be taken yet, the reason.

The steps and their states are the values of ``evaluation.board.steps``; a ``blocked`` reason
names what to do first. Annotation is optional and never blocks the other steps.
"""

from __future__ import annotations

from django.db.models import Count, Q

from annotation.models import AnnotationBatch
from annotation.selectors import batch_progress
from evaluation import selectors as metric_selectors
from evaluation.board.seed import seed_step
from evaluation.board.steps import (
    DONE,
    AnnotateStep,
    AnnotateTarget,
    BatchRow,
    CollectStep,
    DecodeStep,
    MetricsStep,
    NextRoundStep,
    RoundBoard,
    SystemGames,
    TrainStep,
    TrainTarget,
)
from games.models import Game, Round, RoundSlot, Study, System
from models_svc.interfaces import CheckpointError
from models_svc.models import DecodeRun, ModelCheckpoint, TrainingRun
from models_svc.registry import parse_spec
from models_svc.selectors import label_coverage
from models_svc.training.labels import label_readiness
from models_svc.training.readiness import (
    base_text,
    next_round_refusal,
    trained_systems,
    training_refusal,
)
from models_svc.training.selection import ranked_runs
from models_svc.training.selectors import TrainingError, decoder_kind, decoder_name


def _kind_of(system_name: str) -> str:
    try:
        return decoder_kind(system_name)
    except TrainingError:
        return ""


def _collect(round_: Round) -> CollectStep:
    counts: dict[str, dict[str, int]] = {
        row["system__name"]: {"ended": row["ended"], "playing": row["playing"]}
        for row in Game.objects.filter(round=round_)
        .values("system__name")
        .annotate(
            ended=Count("id", filter=Q(status=Game.Status.ENDED)),
            playing=Count("id", filter=~Q(status=Game.Status.ENDED)),
        )
    }
    planned = dict(
        RoundSlot.objects.filter(round=round_)
        .values("system__name")
        .annotate(n=Count("id"))
        .values_list("system__name", "n")
    )
    systems = [
        SystemGames(
            name=system.name,
            ended=counts.get(system.name, {}).get("ended", 0),
            playing=counts.get(system.name, {}).get("playing", 0),
            planned=planned.get(system.name, 0),
            decode_when_lobby_closes=system.decode_when_lobby_closes,
            kind=_kind_of(system.name),
        )
        for system in round_.systems.order_by("name")
    ]
    return CollectStep(round_.lobby_open, systems, sum(s.ended for s in systems))


def learners(round_: Round) -> list[System]:
    """The model systems whose training reads this round's games: those of the round, and, in
    rounds before a system first appears, that system (it learns from the round's CONTROL)."""
    systems = list(System.objects.filter(round__study=round_.study).select_related("round"))
    first: dict[str, System] = {}
    for system in sorted(systems, key=lambda s: s.round.index):
        first.setdefault(system.name, system)
    here = {s.name: s for s in systems if s.round_id == round_.pk}
    found = []
    for name, earliest in sorted(first.items()):
        if name in (System.HUMAN, System.CONTROL):
            continue
        if name in here:
            found.append(here[name])
        elif System.CONTROL in here and round_.index < earliest.round.index:
            found.append(earliest)
    return found


def label_sets(round_: Round) -> list[tuple[str, str]]:
    """``(decoder, kind)`` pairs the round's turns need (the decoder's name and the kind a
    learner's name says); ``lexicon`` binary when no learner names one (for the metrics)."""
    pairs = []
    for system in learners(round_):
        try:
            pair = (decoder_name(system), decoder_kind(system.name))
        except TrainingError:
            continue
        if pair not in pairs:
            pairs.append(pair)
    return pairs or [(decoder_name(System(decoder="")), "binary")]


def _decode(round_: Round, collect: CollectStep) -> DecodeStep:
    # The runs are read before the labels: a run read as done stored its labels before it
    # said so, and one read as still running keeps the page following it.
    runs = list(
        DecodeRun.objects.filter(study_id=round_.study_id, round_index=round_.index).order_by(
            "-created_at", "-pk"
        )[:5]
    )
    coverage = [
        label_coverage(round_.study_id, round_.index, decoder, kind)
        for decoder, kind in label_sets(round_)
    ]
    blocked = ""
    if not coverage[0].decodable:
        blocked = (
            "collect games first: no turn of this round has a follow-up utterance to decode"
            if any(s.ended or s.playing for s in collect.systems)
            else "collect games first: the round has no games"
        )
    return DecodeStep(coverage, runs, blocked)


def _annotate(round_: Round, collect: CollectStep) -> AnnotateStep:
    batches = [
        BatchRow(batch, progress["games_complete"], progress["games"])
        for batch in AnnotationBatch.objects.filter(round=round_).select_related("system")
        for progress in [batch_progress(batch)]
    ]
    ended = {s.name: s.ended for s in collect.systems}
    targets = [
        AnnotateTarget(
            system,
            "" if ended.get(system.name) else f"no ended game of {system.name} to annotate yet",
        )
        for system in round_.systems.order_by("name")
    ]
    return AnnotateStep(batches, targets)


def _metrics(round_: Round, collect: CollectStep, decode: DecodeStep) -> MetricsStep:
    study = round_.study
    active = metric_selectors.active_run(study)  # first: a run read as done is the latest
    latest = metric_selectors.latest_run(study)
    stale = latest is not None and latest.data_stamp != metric_selectors.data_stamp(study)
    blocked = ""
    if active is not None:
        blocked = f"metric run {active.pk} is under way ({active.progress:.0%}: {active.message})"
    elif not collect.ended:
        blocked = f"collect games first: round {round_.index} has no ended game"
    warning = ""
    if not blocked and decode.state != DONE:
        warning = "Feedback is not fully decoded yet: the feedback metrics will leave turns out."
    return MetricsStep(latest, active, stale, blocked, warning)


def base_checkpoints() -> list[str]:
    """Registered, checked policy checkpoints a training run can start from (``hf:PATH``); one
    that failed to load on a worker (under any round) is not offered."""
    specs = ModelCheckpoint.objects.filter(
        kind=ModelCheckpoint.Kind.POLICY,
        status=ModelCheckpoint.Status.READY,
        spec__startswith="hf:",
    ).exclude(spec__contains="+lora:")
    failed = ModelCheckpoint.objects.filter(status=ModelCheckpoint.Status.FAILED)
    return sorted(set(specs.exclude(spec__in=failed.values("spec")).values_list("spec", flat=True)))


def _needs_base(system: System) -> bool:
    spec = base_text(system)
    try:
        return not spec or parse_spec(spec, "policy").backend != "hf"
    except CheckpointError:
        return True


def undecoded_rounds(round_: Round, system: System) -> list[int]:
    """The rounds ``system`` learns from whose decodable turns do not all carry its decoder's
    label in its kind (what "Decode every round it learns from" queues; the same count as the
    launch's readiness rule, ``label_readiness``)."""
    readiness = label_readiness(round_.study, round_.index, system)
    return [row.round_index for row in readiness.rounds if row.labelled < row.needed]


def _train(round_: Round) -> TrainStep:
    systems = trained_systems(round_)
    runs = TrainingRun.objects.filter(study_id=round_.study_id, round_index=round_.index)
    bases = base_checkpoints()
    targets = []
    for system in systems:
        mine = runs.filter(system_name=system.name).order_by("-created_at", "-pk")
        # The base is chosen in the form (the step says when none is registered).
        refusal = training_refusal(round_.study, round_.index, system.name, base=None)
        ranked = tuple(ranked_runs(round_.study_id, round_.index, system.name))
        targets.append(
            TrainTarget(
                system,
                mine.first(),
                ranked[0] if ranked else None,
                refusal.message if refusal is not None else "",
                ranked,
                tuple(undecoded_rounds(round_, system)),
            )
        )
    blocked = ""
    if not systems:
        blocked = "nothing to train: the round has no model system besides CONTROL and HH"
    elif not bases and any(_needs_base(s) for s in systems):
        blocked = (
            "needs a base checkpoint: register an hf:PATH policy checkpoint on the Checkpoints "
            "page (the systems act with a policy that has no weights to train)"
        )
    return TrainStep(targets, bases, blocked)


def _next_round(round_: Round, train: TrainStep) -> NextRoundStep:
    following = Round.objects.filter(study_id=round_.study_id, index=round_.index + 1).first()
    if following is not None:
        return NextRoundStep(following, "")
    return NextRoundStep(None, next_round_refusal(round_.study, round_.index))


def round_board(round_: Round, is_last: bool) -> RoundBoard:
    collect = _collect(round_)
    decode = _decode(round_, collect)
    annotate = _annotate(round_, collect)
    metrics = _metrics(round_, collect, decode)
    train = _train(round_)
    following = _next_round(round_, train)
    steps = [
        ("collect", "Collect games", collect.state),
        ("decode", "Decode feedback", decode.state),
        ("annotate", "Annotate", annotate.state),
        ("metrics", "Compute metrics", metrics.state),
        ("train", "Train", train.state),
        ("next_round", f"Open round {round_.index + 1}", following.state),
    ]
    return RoundBoard(
        round_,
        is_last,
        collect,
        decode,
        annotate,
        metrics,
        train,
        following,
        steps=steps,
        seed=seed_step(round_),
    )


def study_board(study: Study) -> list[RoundBoard]:
    """Every round of the study, newest first."""
    rounds = list(study.rounds.select_related("study").order_by("-index"))
    return [round_board(r, is_last=i == 0) for i, r in enumerate(rounds)]
