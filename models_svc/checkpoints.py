"""Checkpoint paths: existence, what kind of model a directory holds, and a version fingerprint.

Pure file inspection (JSON configs, file sizes and a few hashed bytes); nothing here imports
torch or transformers, so the web process can show a checkpoint's status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .interfaces import CheckpointError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint directory holds: ``model_type`` and ``architectures`` from its config."""

    path: str
    model_type: str
    architectures: tuple[str, ...]
    is_adapter: bool = False
    is_open_clip: bool = False


def require_path(path: str, what: str) -> Path:
    if not path:
        raise CheckpointError(f"{what}: no checkpoint path given")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise CheckpointError(f"{what}: checkpoint path {path} does not exist")
    return resolved


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{what}: cannot read {path}: {exc}") from exc


def inspect_checkpoint(path: str, what: str = "checkpoint") -> CheckpointInfo:
    """Read a checkpoint directory's config; raises CheckpointError naming what is wrong."""
    root = require_path(path, what)
    if not root.is_dir():
        raise CheckpointError(f"{what}: {path} is a file; expected a checkpoint directory")
    if (root / "adapter_config.json").exists():
        config = _read_json(root / "adapter_config.json", what)
        return CheckpointInfo(str(root), str(config.get("peft_type", "")), (), is_adapter=True)
    if (root / "open_clip_config.json").exists():
        config = _read_json(root / "open_clip_config.json", what)
        if "model_cfg" not in config:
            raise CheckpointError(f"{what}: {root}/open_clip_config.json has no model_cfg")
        return CheckpointInfo(str(root), "open_clip", (), is_open_clip=True)
    if not (root / "config.json").exists():
        raise CheckpointError(
            f"{what}: {path} has no config.json (nor adapter_config.json or "
            "open_clip_config.json): not a Hugging Face, PEFT or open_clip checkpoint"
        )
    config = _read_json(root / "config.json", what)
    model_type = config.get("model_type")
    if not model_type:
        raise CheckpointError(f"{what}: {root}/config.json names no model_type")
    return CheckpointInfo(str(root), str(model_type), tuple(config.get("architectures") or ()))


def fingerprint(*paths: str) -> str:
    """A short version id of checkpoint files: names, sizes, JSON contents and sampled bytes.

    Weight files are hashed by their first and last MiB (fast on multi-GB files, yet any
    retraining changes it); small files are hashed whole.
    """
    digest = hashlib.sha256()
    for path in paths:
        root = Path(path)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            relative = file.relative_to(root) if root.is_dir() else Path(file.name)
            size = file.stat().st_size
            digest.update(f"{relative}\0{size}\0".encode())
            with file.open("rb") as handle:
                if size <= 2 * _SAMPLE_BYTES:
                    digest.update(handle.read())
                else:
                    digest.update(handle.read(_SAMPLE_BYTES))
                    handle.seek(size - _SAMPLE_BYTES)
                    digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:16]
