"""Opening rounds and their systems: the one writer of ``Round`` and ``System`` rows.

Every entry point that opens a round or adds a system goes through here: the training's "open
the next round" (``models_svc.training.runs``), simulated studies (``models_svc.simulation``),
imports of interaction records (``games.importing``) and the demo (``games.demo``).

``open_round`` creates a round with its systems, all or nothing, and refuses a round the study
already has with ``RoundAlreadyOpen`` (409). Concurrent calls for one study are serialised by a
lock on the study's row, and the unique constraint on (study, index) backs the check, so of six
simultaneous "open the next round" requests one opens it and five are told it is already open.
``ensure_round`` and ``ensure_system`` are the idempotent forms (get or create) for imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from config.errors import ApplicationError

from .models import Round, Study, System


class RoundAlreadyOpen(ApplicationError):
    """The study already has the round asked for (perhaps opened a moment ago by another
    request); nothing was written."""

    def __init__(self, study: Study, index: int) -> None:
        super().__init__(
            f"study {study.name!r} already has round {index}", field="round", status=409
        )
        self.index = index


@dataclass(frozen=True)
class SystemSpec:
    """A system to create in a round (``System``'s fields)."""

    name: str
    policy_checkpoint: str = ""
    decoder: str = ""
    prompt_format: str = ""
    description: str = ""

    def fields(self) -> dict[str, str]:
        values = {
            "policy_checkpoint": self.policy_checkpoint,
            "decoder": self.decoder,
            "description": self.description,
        }
        if self.prompt_format:
            values["prompt_format"] = self.prompt_format
        return values


def open_round(
    study: Study,
    index: int,
    systems: Sequence[SystemSpec],
    *,
    notes: str = "",
    reuse_configs: bool = False,
    lobby_open: bool = False,
) -> Round:
    """Create round ``index`` of ``study`` with ``systems``; RoundAlreadyOpen if it exists."""
    with transaction.atomic():
        Study.objects.select_for_update().only("pk").get(pk=study.pk)
        if Round.objects.filter(study=study, index=index).exists():
            raise RoundAlreadyOpen(study, index)
        try:
            with transaction.atomic():
                round_ = Round.objects.create(
                    study=study,
                    index=index,
                    notes=notes,
                    reuse_configs=reuse_configs,
                    lobby_open=lobby_open,
                )
        except IntegrityError as error:  # a writer that did not take the study's lock
            raise RoundAlreadyOpen(study, index) from error
        for spec in systems:
            System.objects.create(round=round_, name=spec.name, **spec.fields())
    return round_


def ensure_round(study: Study, index: int, *, lobby_open: bool = False) -> Round:
    """Round ``index`` of ``study``, created (with ``lobby_open``) if missing."""
    round_, _ = Round.objects.get_or_create(
        study=study, index=index, defaults={"lobby_open": lobby_open}
    )
    return round_


def ensure_system(round_: Round, spec: SystemSpec) -> System:
    """The system of ``round_`` named ``spec.name``, created with ``spec``'s fields if missing
    (an existing one is left as it is)."""
    system, _ = System.objects.get_or_create(round=round_, name=spec.name, defaults=spec.fields())
    return system
