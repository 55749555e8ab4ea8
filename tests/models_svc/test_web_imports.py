"""The web process never imports the heavy ML libraries (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, json, pkgutil, sys
import django
django.setup()
from django.conf import settings
from django.urls import get_resolver
get_resolver().url_patterns  # import every urls module
import config.asgi, config.wsgi, config.urls
from django.contrib import admin
admin.autodiscover()
WORKER_ONLY = (
    "models_svc.backends",
    "models_svc.tiny_models",
    "models_svc.training.trainer",
    "models_svc.training.packing",
    "models_svc.training.objectives",
)
for app in ("games", "annotation", "evaluation", "models_svc", "config"):
    package = importlib.import_module(app)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{app}."):
        if ".migrations" in info.name or info.name.startswith(WORKER_ONLY):
            continue
        importlib.import_module(info.name)
import models_svc.registry, models_svc.lexicon, models_svc.baselines, models_svc.checkpoints
HEAVY = ("torch", "transformers", "open_clip", "peft", "accelerate", "torchvision")
heavy = sorted(name for name in HEAVY if name in sys.modules)
print(json.dumps(heavy))
"""


def test_web_modules_import_no_ml_library():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
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
    probe = SCRIPT.replace(
        "import models_svc.registry,", "import models_svc.backends.hf_common, models_svc.registry,"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch" in json.loads(result.stdout.strip().splitlines()[-1])
