"""Which checkpoint directories researchers may name: only those under the model roots.

Registration (``checkpoint_registration``), decoding requests (``decode_runs``) and training
launches (``training.runs``) pass every path of a spec through ``confined_spec``. A path is
resolved first (``~``, ``.``, ``..``, doubled or trailing slashes and symbolic links), so the same
files under any spelling are one canonical path, and one checkpoint. A path that does not
resolve to a directory under a root of ``settings.MODEL_ROOTS`` (``RESPECT_MODEL_ROOTS``) gets
one message, whether or not it exists: the pages must not tell anyone what lies elsewhere on the
server's disks.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from .interfaces import CheckpointError
from .model_keys import canonical_path
from .registry import Spec

OUTSIDE = "is not under a model root"


def model_roots() -> list[Path]:
    """The resolved model roots (``settings.MODEL_ROOTS``)."""
    return [Path(canonical_path(str(root))) for root in settings.MODEL_ROOTS]


def confined_path(text: str) -> str:
    """The canonical path of a checkpoint directory under a model root; CheckpointError (the
    same message for a missing path and one outside the roots) otherwise."""
    resolved = Path(canonical_path(text))
    roots = model_roots()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        shown = ", ".join(str(root) for root in roots) or "none configured"
        raise CheckpointError(f"{text} {OUTSIDE} (RESPECT_MODEL_ROOTS: {shown})")
    if not resolved.is_dir():
        raise CheckpointError(f"{text} is not a checkpoint directory")
    return str(resolved)


def confined_spec(spec: Spec) -> Spec:
    """``spec`` with its path and adapter canonical and under a model root (backends without a
    path, such as ``lexicon`` and ``random``, pass unchanged)."""
    if not spec.path:
        return spec
    adapter = confined_path(spec.adapter) if spec.adapter else ""
    return Spec(spec.backend, confined_path(spec.path), adapter)
