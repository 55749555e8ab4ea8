"""Registering checkpoints from the researchers' Checkpoints page, and queueing loading checks.

A checkpoint is registered only if its files pass the web-side check
(``services.check_checkpoint_files``: the path exists and holds the kind of model its spec
names); otherwise nothing is stored and the error names what is wrong. Loading a checkpoint
needs torch, so that check runs on a ``gpu-batch`` worker (``models_svc.tasks.check_checkpoint``).
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import transaction

from config.errors import ApplicationError
from games.models import Round

from .checkpoint_paths import confined_spec
from .interfaces import CheckpointError
from .models import ModelCheckpoint
from .registry import parse_spec
from .services import check_checkpoint_files

PATH_PREFIX: dict[str, str] = {
    ModelCheckpoint.Kind.POLICY: "hf",
    ModelCheckpoint.Kind.DECODER: "hf",
    ModelCheckpoint.Kind.EMBEDDER: "clip",
}


class RegistrationError(ApplicationError):
    """A checkpoint that cannot be registered; ``field`` names the input at fault."""

    field: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


def spec_of(kind: str, text: str) -> str:
    """The spec a researcher means: a bare directory path gets its kind's backend (``hf:`` for
    policies and decoders, ``clip:`` for embedders); its paths are resolved and must lie under
    a model root (``checkpoint_paths``), so every spelling of one directory is one spec."""
    if kind not in PATH_PREFIX:
        raise RegistrationError("kind", f"must be policy, decoder or embedder, not {kind!r}")
    text = text.strip()
    if not text:
        raise RegistrationError("spec", "give a checkpoint directory or a spec")
    if text.startswith(("/", "~", ".")):
        text = f"{PATH_PREFIX[kind]}:{text}"
    try:
        return str(confined_spec(parse_spec(text, kind)))
    except CheckpointError as error:
        raise RegistrationError("spec", str(error)) from error


def register_checkpoint(
    kind: str, text: str, *, round_: Round | None = None, notes: str = ""
) -> tuple[ModelCheckpoint, bool]:
    """Register a checkpoint whose files check out; returns it and whether it is new.

    One already registered (same kind, spec and round) is checked again and returned. A new
    one whose check fails is not stored: RegistrationError carries the check's message.
    """
    spec = spec_of(kind, text)
    existing = ModelCheckpoint.objects.filter(kind=kind, spec=spec, round=round_).first()
    if existing is not None:
        return check_checkpoint_files(existing), False
    with transaction.atomic():
        checkpoint = ModelCheckpoint.objects.create(
            kind=kind, spec=spec, round=round_, notes=notes.strip()[:200]
        )
        check_checkpoint_files(checkpoint)
        if checkpoint.status != ModelCheckpoint.Status.READY:
            transaction.set_rollback(True)
            raise RegistrationError("spec", f"not registered: {checkpoint.status_message}")
    return checkpoint, True


def queue_loading_check(checkpoint: ModelCheckpoint) -> None:
    """Ask a ``gpu-batch`` worker to load the checkpoint once the current transaction commits; the
    worker records ``ready`` or ``failed`` (or ``incompatible``) with the message."""
    transaction.on_commit(
        lambda: current_app.send_task(
            "models_svc.tasks.check_checkpoint",
            args=[checkpoint.pk],
            queue=settings.GPU_BATCH_QUEUE,
        )
    )


def queue_embedding(embedder_spec: str) -> None:
    """Ask a ``gpu-batch`` worker to embed every tangram with an embedder, once the current
    transaction commits."""
    transaction.on_commit(
        lambda: current_app.send_task(
            "models_svc.tasks.embed_tangrams", args=[embedder_spec], queue=settings.GPU_BATCH_QUEUE
        )
    )
