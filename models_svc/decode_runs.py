"""Decoding runs requested from the researchers' pages (the round board), checked at the edge.

A request names a study round, a decoder spec and a feedback kind; it is refused with a
``DecodeRequestError`` naming the field at fault before anything is written. A second request
for the same decoding while one is queued or running gets that run back instead of a copy
(queued again first when it is stale: ``config.heartbeat``).
The run itself goes to the ``gpu-batch`` queue (``models_svc.tasks.decode_feedback_run``).
``decode_closed_round`` queues what a round's systems ask for when its lobby closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from config import heartbeat
from config.errors import ApplicationError
from games.models import Round, Study

from .checkpoint_paths import confined_spec
from .interfaces import KIND_LABELS, CheckpointError
from .models import DecodeRun
from .registry import parse_spec
from .services import launch_decode_run
from .training.selectors import TrainingError, decoder_kind, decoder_name

ACTIVE = (DecodeRun.Status.QUEUED, DecodeRun.Status.RUNNING)


class DecodeRequestError(ApplicationError):
    """A decoding request that cannot run; ``field`` names the input at fault."""

    field: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


def normalized_decoder(text: str) -> str:
    """The canonical spec of a decoder (``lexicon``, ``hf:PATH`` with PATH resolved and under a
    model root); raises DecodeRequestError."""
    try:
        return str(confined_spec(parse_spec(text or "lexicon", "decoder")))
    except CheckpointError as error:
        raise DecodeRequestError("decoder", str(error)) from error


def request_decode_run(
    study: Study, round_index: int, *, decoder: str, kind: str, user=None
) -> tuple[DecodeRun, bool]:
    """Queue the decoding of one round's turns; returns the run and whether it is new."""
    spec = normalized_decoder(decoder)
    if kind not in KIND_LABELS:
        raise DecodeRequestError("kind", f"must be binary or ternary, not {kind!r}")
    if not Round.objects.filter(study=study, index=round_index).exists():
        raise DecodeRequestError("round", f"study {study.name!r} has no round {round_index}")
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)
        same = DecodeRun.objects.filter(
            study=study, round_index=round_index, system_name="", decoder=spec, kind=kind
        ).filter(status__in=ACTIVE)
        running = same.order_by("created_at", "pk").first()
        if running is not None:
            heartbeat.requeue_if_stale(running)  # its worker stopped, or its message was lost
            return running, False
        run = DecodeRun(
            study=study,
            round_index=round_index,
            decoder=spec,
            kind=kind,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        return launch_decode_run(run), True


@dataclass(frozen=True)
class ClosingDecodes:
    """What closing a lobby queued: runs (with whether each is new) and systems left out."""

    runs: list[tuple[DecodeRun, bool]]
    skipped: dict[str, str]


def decode_closed_round(round_: Round, *, user=None) -> ClosingDecodes:
    """Queue the decodings that the round's systems ask for when its lobby closes
    (``System.decode_when_lobby_closes``): each system's decoder, in the kind its name says.
    A system whose name says no kind is left out, with the reason."""
    wanted: dict[tuple[str, str], list[str]] = {}
    skipped: dict[str, str] = {}
    for system in round_.systems.filter(decode_when_lobby_closes=True).order_by("name"):
        try:
            pair = (decoder_name(system), decoder_kind(system.name))
        except (TrainingError, CheckpointError) as error:
            skipped[system.name] = str(error)
            continue
        wanted.setdefault(pair, []).append(system.name)
    runs = []
    for (decoder, kind), names in wanted.items():
        try:
            run = request_decode_run(
                round_.study, round_.index, decoder=decoder, kind=kind, user=user
            )
        except DecodeRequestError as error:
            skipped.update({name: str(error) for name in names})
        else:
            runs.append(run)
    return ClosingDecodes(runs, skipped)
