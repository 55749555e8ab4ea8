"""Hostile files (tests/data/hostile) end in a clean "nothing imported" and write nothing.

The files go through ``import_games`` in a child process with its address space capped
(``resource.setrlimit``), so a crash, a ``MemoryError`` or ``RecursionError``, or an attempt to
expand a few hundred bytes into gigabytes fails the test instead of taking pytest down. The
child shares the test database, hence ``transactional_db``.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from games import safe_pickle
from games.models import Game, Study, Turn, Worker
from tests.data.hostile.make_hostile import EXPECTED, FILES, HOSTILE_DIR
from tests.sample_files import SAMPLE_JSON

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_BYTES = 3 * 1024**3


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


CHILD = """
import io, json, sys
import django
django.setup()
from django.core.management import CommandError, call_command
results = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    try:
        call_command(
            "import_games", path, "--study", "hostile", "--round", "0", "--system", "HH", stdout=out
        )
    except CommandError as error:
        results[path] = str(error)
    except BaseException as error:
        results[path] = f"unclean: {type(error).__name__}"
    else:
        results[path] = out.getvalue().strip()
print(json.dumps(results))
"""


def import_in_child(*paths: Path) -> dict[str, str]:
    """What ``import_games`` says about each file, run in a capped child process."""
    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "OPENBLAS_NUM_THREADS": "1",
    }
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        preexec_fn=limit_memory,
        check=False,
    )
    assert (finished.returncode, finished.stderr) == (0, "")
    return {Path(path).name: said for path, said in json.loads(finished.stdout).items()}


def assert_nothing_written() -> None:
    assert (Study.objects.count(), Game.objects.count(), Turn.objects.count()) == (0, 0, 0)
    assert Worker.objects.count() == 0


def test_the_committed_files_are_what_the_script_writes():
    for name, make in FILES.items():
        content = make()
        path = HOSTILE_DIR / name
        stored = path.read_bytes() if isinstance(content, bytes) else path.read_text()
        assert stored == content, f"{name} is stale: run tests/data/hostile/make_hostile.py"
    assert sorted(FILES) == sorted(EXPECTED)


def test_hostile_files_are_refused_cleanly_with_nothing_written(transactional_db):
    said = import_in_child(*(HOSTILE_DIR / name for name in sorted(FILES)))
    assert said == {name: f"nothing imported: {message}" for name, message in EXPECTED.items()}
    assert_nothing_written()


@pytest.mark.postgresql("the import runs in a child process, which shares the database")
def test_the_memory_cap_leaves_room_for_a_real_import(transactional_db, sample_tangrams):
    """The control for the cap above: the sample export imports under the same limit."""
    said = import_in_child(SAMPLE_JSON)
    assert said == {SAMPLE_JSON.name: "imported 24 games (168 turns)"}
    assert Game.objects.count() == 24


def deep_pickle(depth: int) -> bytes:
    return pickle.PROTO + b"\x04" + pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1) + b"."


def test_pickle_nested_200000_deep_is_refused(db, tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_pickle(200_000))
    with pytest.raises(CommandError) as caught:
        call_command("import_games", str(path), "--study", "deep", "--round", "0", "--system", "HH")
    assert str(caught.value) == (
        "nothing imported: deep.pkl: refused: nested more than 100 levels deep (or contains itself)"
    )
    assert_nothing_written()


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_nested_200000_deep_is_refused(db, tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    nested = "[" * 200_000 + "]" * 200_000
    if suffix == ".json":
        path.write_text('{"g1": {"context": ' + nested + "}}")
        where = "deep.json"
    else:
        path.write_text('{"game_id": "g1", "metadata": ' + nested + "}\n")
        where = "line 1"
    with pytest.raises(CommandError) as caught:
        call_command("import_games", str(path), "--study", "deep", "--round", "0", "--system", "HH")
    assert (
        str(caught.value) == f"nothing imported: {where}: refused: nested more than 64 levels deep"
    )
    assert_nothing_written()


def test_numpy_array_pickles_still_import(db, tmp_path):
    """A study export whose numbers are numpy values and arrays loads as plain values."""
    import numpy as np

    export = json.loads(SAMPLE_JSON.read_text())
    game_id, game = next(iter(export.items()))
    game["speaker_hrly"] = np.float64(game["speaker_hrly"])
    game["scores"] = np.array([[1.5, 2.0], [3.0, np.nan]])
    path = tmp_path / "numpy.pkl"
    path.write_bytes(pickle.dumps({game_id: game}, protocol=2))
    loaded = safe_pickle.load_pickle(path)
    assert loaded[game_id]["scores"] == [[1.5, 2.0], [3.0, None]]
    assert loaded[game_id]["speaker_hrly"] == float(game["speaker_hrly"])
