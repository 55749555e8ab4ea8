"""Which app may import which: the allowed directions, listed once, checked on every import of
every module of every app, the ones inside functions included (docs/architecture.md).

``config`` is the project's shared base (settings, errors, heartbeats, bounded JSON); its
routing mounts the games' websocket routes. ``games`` is the core and imports no other app (it
reaches the model service by task name and the crowd sessions through the check ``annotation``
registers). ``annotation`` and ``models_svc`` build on ``games``, and not on each other;
``annotation`` computes agreement with the pure statistics of ``evaluation.stats``.
``evaluation`` reads all of them. ``evaluation.stats`` imports neither Django nor any app.

Within the ``annotation`` app, reads never build on writes: its selectors import none of its
services.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    "config": {"games.routing", "games.live.sockets"},
    "games": {"config"},
    "annotation": {"config", "games", "evaluation.stats"},
    "models_svc": {"config", "games"},
    "evaluation": {"config", "games", "annotation", "models_svc"},
    "evaluation.stats": set(),
}
"""Package → the packages and modules of other apps it may import (a longer key wins)."""
APPS = ("config", "games", "annotation", "models_svc", "evaluation")
NO_DJANGO = ("evaluation.stats",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str) -> set[str]:
    """Every module (or module.name) ``source`` imports, relative imports made absolute."""
    found: set[str] = set()
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + (1 if _is_package(module) else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _is_package(module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").exists()


def rule_of(module: str) -> tuple[str, set[str]]:
    keys = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    key = max(keys, key=len)
    return key, ALLOWED[key]


def owner(imported: str) -> str | None:
    """The app an imported name belongs to, or None for libraries."""
    top = imported.split(".")[0]
    return top if top in APPS else None


def violations(module: str, source: str) -> list[str]:
    key, allowed = rule_of(module)
    own = key if key in NO_DJANGO else module.split(".")[0]
    wrong = []
    for imported in sorted(imports_of(source, module)):
        if imported == own or imported.startswith(own + "."):
            continue
        if owner(imported) is None:
            if key in NO_DJANGO and imported.split(".")[0] == "django":
                wrong.append(f"{module} imports {imported}")
            continue
        if not any(imported == a or imported.startswith(a + ".") for a in allowed):
            wrong.append(f"{module} imports {imported}")
    return wrong


def app_modules() -> list[Path]:
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_every_import_of_every_app_goes_an_allowed_way():
    found = []
    for path in app_modules():
        found += violations(module_name(path), path.read_text())
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "wrong"),
    [
        ("games.live.admission", "def f():\n    from annotation import selectors\n", True),
        ("games.live.admission", "import annotation.models\n", True),
        ("games.live.admission", "from config.errors import ApplicationError\n", False),
        ("games.live.admission", "from ..models import Round\n", False),
        ("models_svc.views", "from annotation.models import CrowdSession\n", True),
        ("annotation.agreement", "from evaluation.stats import agreement\n", False),
        ("annotation.agreement", "from evaluation import selectors\n", True),
        ("evaluation.stats.study", "from django.db import models\n", True),
        ("evaluation.stats.study", "from evaluation.selectors import study_input\n", True),
        ("evaluation.stats.study", "from .metrics import METRICS\n", False),
        ("evaluation.selectors", "from models_svc.models import DecodeRun\n", False),
    ],
)
def test_the_check_sees_every_form_of_import(module, source, wrong):
    assert bool(violations(module, source)) is wrong


ANNOTATION_READS = ["selectors", "earnings", "agreement"]
ANNOTATION_WRITES = {"services", "creation", "gold", "work_queue", "survey", "mturk"}


@pytest.mark.parametrize("module", ANNOTATION_READS)
def test_annotation_read_modules_import_no_write_module(module):
    imported = imports_of(
        (ROOT / "annotation" / f"{module}.py").read_text(), f"annotation.{module}"
    )
    used = {name.split(".")[1] for name in imported if name.startswith("annotation.")}
    assert used & ANNOTATION_WRITES == set()


def test_relative_and_absolute_imports_name_the_same_modules():
    source = (
        "from .services import claim_next\nfrom . import survey, models\n"
        "import annotation.gold\nfrom annotation.mturk import approve_and_pay\n"
        "from games.models import Game\n"
    )
    assert imports_of(source, "annotation.selectors") == {
        "annotation.services.claim_next",
        "annotation.survey",
        "annotation.models",
        "annotation.gold",
        "annotation.mturk.approve_and_pay",
        "games.models.Game",
    }


def test_rounds_and_systems_are_created_only_by_games_rounds():
    """One service opens rounds and adds systems (``games/rounds.py``)."""
    writers = []
    pattern = re.compile(r"\b(Round|System)\.objects\.(create|get_or_create|bulk_create)\(")
    for path in app_modules():
        if pattern.search(path.read_text()) and path.relative_to(ROOT) != Path("games/rounds.py"):
            writers.append(str(path.relative_to(ROOT)))
    assert writers == []
