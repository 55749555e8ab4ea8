"""Reads never build on writes: the annotation app's selectors import none of its services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "annotation"
READS = ["selectors.py", "earnings.py", "agreement.py"]
WRITES = {"services", "creation", "gold", "work_queue", "survey", "mturk"}


def imported_app_modules(source: str) -> set[str]:
    """The annotation modules a module's source imports (``from .x import``, ``from . import
    x``, ``import annotation.x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module.startswith("annotation"):
                first = module.removeprefix("annotation").strip(".").split(".")[0]
                names.update([first] if first else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            names.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("annotation.")
            )
    return names


@pytest.mark.parametrize("module", READS)
def test_read_modules_import_no_write_module(module):
    assert imported_app_modules((APP / module).read_text()) & WRITES == set()


def test_the_check_sees_every_form_of_import():
    source = (
        "from .services import claim_next\nfrom . import survey, models\n"
        "import annotation.gold\nfrom annotation.mturk import approve_and_pay\n"
        "from games.models import Game\n"
    )
    assert imported_app_modules(source) == {"services", "survey", "models", "gold", "mturk"}
