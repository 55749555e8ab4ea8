"""Fixtures of the evaluation tests."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from .samples import SAMPLE_JSON, image, load_json


@pytest.fixture
def sample_tangrams(db) -> set[str]:
    """Tangram rows for every image of the sample games (no image files needed)."""
    from games.models import Tangram

    names = {image(name) for game in load_json().values() for name in game["context"]}
    Tangram.objects.bulk_create(
        [Tangram(name=name, split="train") for name in sorted(names)], ignore_conflicts=True
    )
    return names


def run_command(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def import_sample(sample_tangrams):
    def run(study: str = "sample", round_index: int = 0, system: str = "B-FFT", path=SAMPLE_JSON):
        return run_command("import_games", str(path), study=study, round=round_index, system=system)

    return run


def metrics_json(study: str, **options) -> dict:
    return json.loads(run_command("compute_metrics", study=study, json=True, **options))
