"""Canonical cache keys: however a checkpoint's path is written, the same files give one key."""

from __future__ import annotations

import os

import pytest

from models_svc.interfaces import CheckpointError
from models_svc.model_keys import model_key


def test_spellings_of_one_directory_share_a_key_and_new_weights_change_it(tmp_path):
    tiny = tmp_path / "x" / "tiny"
    tiny.mkdir(parents=True)
    (tiny / "config.json").write_text('{"model_type": "idefics2"}')
    weights = tiny / "model.safetensors"
    weights.write_bytes(b"\0" * 64)
    os.symlink(tiny, tmp_path / "link")
    root = str(tmp_path)
    spellings = [
        f"{root}/x/tiny",
        f"{root}/x/tiny/",
        f"{root}/x//tiny",
        f"{root}/x/./tiny",
        f"{root}/x/../x/tiny",
        f"{root}/link",
    ]
    keys = {model_key(path) for path in spellings}
    assert len(keys) == 1
    (key,) = keys
    assert key.path == str(tiny.resolve())
    os.utime(weights, ns=(1, 2_000_000_000))
    assert model_key(spellings[0]).stamp != key.stamp
    retouched = model_key(spellings[0])
    weights.write_bytes(b"\1" * 65)
    os.utime(weights, ns=(1, 2_000_000_000))
    assert model_key(spellings[0]).stamp != retouched.stamp  # the size differs


def test_a_missing_directory_is_a_clear_error(tmp_path):
    message = r"listener policy: checkpoint path .* does not exist"
    with pytest.raises(CheckpointError, match=message):
        model_key(str(tmp_path / "nothing"), "listener policy")
