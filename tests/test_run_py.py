"""``run.py``'s environment rules: an install of more extras serves a command needing fewer, and
``run.py manage`` forwards its arguments to the management command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import run

ROOT = Path(__file__).resolve().parents[1]


def stamp(venv: Path, extras: str, constraints: bytes) -> None:
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + constraints + extras.encode()
    ).hexdigest()
    (venv / f".respect-installed-{extras or 'base'}").write_text(digest)


def test_an_install_of_more_extras_covers_the_demos_ml_extra(tmp_path):
    constraints = (ROOT / "constraints.txt").read_bytes()
    assert not run.covering_install(tmp_path, "ml", constraints)
    stamp(tmp_path, "dev,ml", constraints)
    assert run.covering_install(tmp_path, "ml", constraints)
    assert run.covering_install(tmp_path, "", constraints)
    assert not run.covering_install(tmp_path, "ml,gpu", constraints)
    assert not run.covering_install(tmp_path, "ml", constraints + b"torch==0.0\n")


def test_manage_without_a_command_says_how_to_use_it():
    result = subprocess.run(
        [sys.executable, "run.py", "manage"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "usage: python3 run.py manage COMMAND [ARGS] (e.g. manage simulate_study --help)"
    )


def test_the_demo_environment_trains_from_its_tiny_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("RESPECT_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("RESPECT_TRAINING_BASE", raising=False)
    monkeypatch.delenv("RESPECT_TRAINING_PRESET", raising=False)
    monkeypatch.setattr(run.shutil, "which", lambda name, **kwargs: None)
    env = run.demo_env()
    assert env["RESPECT_TRAINING_BASE"] == f"hf:{tmp_path.resolve() / 'tiny-idefics2'}"
    assert env["RESPECT_TRAINING_PRESET"] == "tiny"
    assert env["DJANGO_DEBUG"] == "1"
