"""Fixtures of the import/export tests: the shared sample files and their tangrams."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.sample_files import SAMPLE_JSON


@pytest.fixture(scope="session")
def sample_data() -> dict:
    if not SAMPLE_JSON.exists():
        pytest.fail(f"the shared sample file is missing: {SAMPLE_JSON}")
    return json.loads(SAMPLE_JSON.read_text())


@pytest.fixture
def sample(sample_data) -> dict:
    """A private deep copy of the sample export, for tests that break it."""
    return copy.deepcopy(sample_data)


@pytest.fixture
def sample_tangrams(db, sample_data) -> set[str]:
    """Tangram rows for every image the sample games use (KILOGRAM ids; no images needed)."""
    from games.models import Tangram

    names = {image.rsplit(".", 1)[0] for game in sample_data.values() for image in game["context"]}
    Tangram.objects.bulk_create([Tangram(name=name, split="train") for name in sorted(names)])
    return names


@pytest.fixture
def write_json(tmp_path):
    def write(data: object, name: str = "games.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return write
