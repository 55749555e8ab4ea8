"""Canonical cache keys of checkpoint directories (pure file inspection, no torch).

A key is the resolved real path plus a stamp of the files under it (relative name, size and
modification time of each), so ``/x/tiny``, ``/x/tiny/``, ``/x//tiny``, ``/x/./tiny`` and a
symbolic link to it name the same key, and rewriting the weights in place gives a new one.
Reading sizes and times costs a ``stat`` per file, cheap enough to run on every lookup.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoints import require_path


@dataclass(frozen=True)
class ModelKey:
    """A checkpoint directory as the model cache knows it."""

    path: str  # the resolved real path
    stamp: str  # hash of the files' names, sizes and modification times

    def __str__(self) -> str:
        return f"{self.path}@{self.stamp}"


def canonical_path(path: str) -> str:
    """The real path of ``path`` (``~`` expanded, ``.``/``..``/doubled slashes and links
    resolved, no trailing slash)."""
    return os.path.realpath(os.path.expanduser(path))


def file_stamp(path: str) -> str:
    """A short hash of the names, sizes and modification times of the files under ``path``."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        status = file.stat()
        relative = file.relative_to(root) if root.is_dir() else Path(file.name)
        digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def model_key(path: str, what: str = "checkpoint") -> ModelKey:
    """The canonical key of a checkpoint directory; CheckpointError when it does not exist."""
    require_path(path, what)
    real = canonical_path(path)
    return ModelKey(real, file_stamp(real))
