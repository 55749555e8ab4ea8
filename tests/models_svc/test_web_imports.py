"""The web process never imports the heavy ML libraries (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_web_modules_import_no_ml_library():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [sys.executable, "-m", "config.web_imports"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.mark.ml
def test_the_check_itself_sees_a_heavy_import():
    # The same probe notices torch once something imports it (so the test above can fail).
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [sys.executable, "-m", "config.web_imports", "models_svc.backends.hf_common"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch" in json.loads(result.stdout.strip().splitlines()[-1])
