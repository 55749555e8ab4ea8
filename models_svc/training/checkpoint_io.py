"""A run's folder: whose it is, its epoch checkpoints and the selected adapter (worker code).

A folder belongs to one run: ``run.json`` records the job's identity (the run's unique folder
id and its manifests' hashes) when the first epoch starts, and a job whose identity differs, or
a folder holding checkpoints without that record, is refused instead of resumed. Trainer state
is written with ``torch.save`` and read with ``torch.load(weights_only=True)``: plain tensors,
numbers, strings, lists and dicts only, so a file planted in the folder cannot run code.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import torch

STATE_FILE = "trainer_state.pt"
IDENTITY_FILE = "run.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


class RunFolderError(ValueError):
    """The run folder belongs to another run, or holds a file that is not plain trainer state."""


def epoch_dir(out_dir: str, seed: int, epoch: int) -> Path:
    return Path(out_dir) / f"seed-{seed}" / f"epoch-{epoch}"


def claim_folder(out_dir: str, identity: dict) -> None:
    """Record the job's identity in a new folder; refuse a folder another run wrote."""
    folder = Path(out_dir)
    record = folder / IDENTITY_FILE
    if record.exists():
        try:
            recorded = json.loads(record.read_text())
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"{record} is not a run identity record: {exc}") from exc
        if recorded != identity:
            raise RunFolderError(
                f"run folder {folder} belongs to {_describe(recorded)}, not to "
                f"{_describe(identity)}: refusing to resume from another run's files"
            )
        return
    if any(folder.glob("seed-*")) or (folder / "adapter").exists():
        raise RunFolderError(
            f"run folder {folder} holds checkpoints that no identity record claims: refusing "
            "to resume from files this run did not write"
        )
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / (IDENTITY_FILE + ".tmp")
    temporary.write_text(json.dumps(identity, sort_keys=True))
    temporary.replace(record)


def _describe(identity: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(identity.items())) or "an anonymous job"


def last_checkpoint(out_dir: str) -> tuple[int, int] | None:
    """The (seed, epoch) of the latest complete checkpoint, or None."""
    done = []
    for state in Path(out_dir).glob(f"seed-*/epoch-*/{STATE_FILE}"):
        seed = int(state.parent.parent.name.removeprefix("seed-"))
        epoch = int(state.parent.name.removeprefix("epoch-"))
        done.append((seed, epoch))
    return max(done) if done else None


def save_checkpoint(out_dir: str, model, optimizer, scheduler, seed, epoch, state) -> None:
    """The adapter, then the trainer state (written last: a folder is complete when it exists)."""
    folder = epoch_dir(out_dir, seed, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    payload = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        **state,
    }
    temporary = folder / (STATE_FILE + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(folder / STATE_FILE)


def load_state(out_dir: str, seed: int, epoch: int) -> dict:
    """A checkpoint's trainer state, read without running code (RunFolderError otherwise)."""
    path = epoch_dir(out_dir, seed, epoch) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise RunFolderError(f"{path} is not plain trainer state, refused: {exc}") from exc


def copy_adapter(out_dir: str, seed: int, epoch: int) -> Path:
    """The selected epoch's adapter copied to ``OUT/adapter`` in peft's layout."""
    source = epoch_dir(out_dir, seed, epoch)
    adapter = Path(out_dir) / "adapter"
    if adapter.exists():
        shutil.rmtree(adapter)
    adapter.mkdir(parents=True)
    for name in ADAPTER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, adapter / name)
    return adapter
