"""The documentation names only things that exist, and nothing points outside the repository.

Every repository path the docs mention (``games/models.py``, ``tests/evaluation/test_stats_*.py``)
must exist; a path followed by ``:name`` (``games/actions.py:parse_action``,
``models_svc/prompt_formats.py:PromptFormat.policy_messages``) must define that name; so must a
dotted name of the project's packages in backticks (``models_svc.tasks.listener_act``,
``config.asgi:application``); every relative Markdown link must reach a file, and its
``#anchor`` a heading of that file. So a renamed module or function breaks this test instead of
silently leaving the docs wrong.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "evaluation" / "README.md", *(ROOT / "docs").glob("*.md")]
)
EXTENSIONS = "py|md|html|js|css|toml|json|txt|pkl"
PATH_REFERENCE = re.compile(
    rf"(?<![\w./*-])((?:[\w.*-]+/)+[\w.*-]+\.(?:{EXTENSIONS}))(?::([A-Za-z_][\w.]*))?(?![\w/])"
)
PACKAGES = ("games", "annotation", "evaluation", "models_svc", "config")
DOTTED_REFERENCE = re.compile(rf"`((?:{'|'.join(PACKAGES)})(?:\.\w+)+)(?::(\w+))?`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
URL = re.compile(r"[a-z]+://\S+")
SKIPPED_DIRECTORIES = {".git", ".venv", "var", "media", "staticfiles", "node_modules", "build"}
# Assembled so that this file does not match itself.
OUTSIDE_POINTERS = ("../" + "shared", "DESIGN" + ".md")


def heading_anchor(title: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces → -."""
    text = re.sub(r"[`*_]", "", title.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors_of(path: Path) -> frozenset[str]:
    titles = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", path.read_text(), flags=re.MULTILINE)
    return frozenset(heading_anchor(title) for title in titles)


@cache
def defined_names(path: Path) -> frozenset[str]:
    """Top-level functions, classes and assignments of a module, and ``Class.member`` names."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        for name in _bound_names(node):
            names.add(name)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                names.update(f"{node.name}.{name}" for name in _bound_names(member))
    return frozenset(names)


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def path_problems(text: str, root: Path) -> list[str]:
    """Repository paths (and ``path.py:name`` references) in ``text`` that do not exist."""
    without_links = URL.sub(" ", LINK.sub("]", text))
    problems = []
    for match in PATH_REFERENCE.finditer(without_links):
        reference, name = match.group(1), match.group(2)
        found = sorted(root.glob(reference)) if "*" in reference else [root / reference]
        found = [path for path in found if path.is_file()]
        if not found:
            problems.append(f"{reference}: no such file")
        elif name and reference.endswith(".py") and name not in defined_names(found[0]):
            problems.append(f"{reference}:{name}: {name} is not defined there")
    return problems


def module_file(root: Path, parts: list[str]) -> tuple[Path, int] | None:
    """The file of the longest module prefix of ``parts`` and that prefix's length, if any."""
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, cut
    return None


def dotted_problems(text: str, root: Path) -> list[str]:
    """Project names in backticks (``pkg.module.name``, ``pkg.module:name``) that do not exist."""
    problems = []
    for match in DOTTED_REFERENCE.finditer(text):
        parts, attribute = match.group(1).split("."), match.group(2)
        found = module_file(root, parts)
        if found is None:
            problems.append(f"{match.group(0)}: no such module")
            continue
        module, cut = found
        name = ".".join(parts[cut:] + ([attribute] if attribute else []))
        if name and name not in defined_names(module):
            where = module.relative_to(root)
            problems.append(f"{match.group(0)}: {name} is not defined in {where}")
    return problems


def link_problems(text: str, document: Path) -> list[str]:
    """Relative links of ``document`` whose file (or heading anchor) does not exist."""
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors_of(path):
            problems.append(f"{target}: no heading #{anchor} in {path.name}")
    return problems


def repository_text_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRECTORIES or "__pycache__" in parts:
            continue
        if path.is_file() and path.suffix in (".py", ".md", ".html", ".js", ".txt", ".toml"):
            files.append(path)
    return files


def test_the_docs_pages_exist():
    names = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert names >= {
        "README.md",
        "users-and-game.md",
        "architecture.md",
        "protocols.md",
        "metrics.md",
        "learning.md",
        "extending.md",
    }


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_path_and_name_a_document_mentions_exists(document):
    assert path_problems(document.read_text(), ROOT) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_dotted_name_a_document_mentions_exists(document):
    assert dotted_problems(document.read_text(), ROOT) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_of_a_document_resolves(document):
    assert link_problems(document.read_text(), document) == []


def test_the_readme_links_the_docs():
    assert "docs/README.md" in LINK.findall((ROOT / "README.md").read_text())


def test_nothing_points_outside_the_repository():
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in repository_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if any(pointer in line for pointer in OUTSIDE_POINTERS)
    ]
    assert offending == []


def test_the_checks_report_what_is_missing(tmp_path):
    # The checks above pass only because the docs are right: here they see broken references.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def real():\n    pass\n\nclass Thing:\n    x = 1\n")
    (tmp_path / "page.md").write_text("# A title: here\n")
    (tmp_path / "games").mkdir()
    (tmp_path / "games" / "__init__.py").write_text("")
    (tmp_path / "games" / "tasks.py").write_text("def expire():\n    pass\n")
    text = (
        "See `pkg/mod.py:real`, `pkg/mod.py:Thing.x`, `pkg/mod.py:gone`, `pkg/other.py`, "
        "pkg/m*.py, `pkg/z*.py` and [a page](page.md#a-title-here), [a missing page](nope.md), "
        "[a bad anchor](page.md#elsewhere), [the web](https://example.org/x/y.py)."
    )
    assert path_problems(text, tmp_path) == [
        "pkg/mod.py:gone: gone is not defined there",
        "pkg/other.py: no such file",
        "pkg/z*.py: no such file",
    ]
    dotted = "`games.tasks.expire`, `games.tasks:expire`, `games.tasks.gone`, `games.nothing.x`"
    assert dotted_problems(dotted, tmp_path) == [
        "`games.tasks.gone`: gone is not defined in games/tasks.py",
        "`games.nothing.x`: nothing.x is not defined in games/__init__.py",
    ]
    assert link_problems(text, tmp_path / "index.md") == [
        "nope.md: no such file",
        "page.md#elsewhere: no heading #elsewhere in page.md",
    ]
