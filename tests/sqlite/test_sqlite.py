"""The embedded database (SQLite, the demo's default) under real concurrency, in subprocesses
pointed at a temporary ``DATABASE_URL=sqlite:///…``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    return env | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "RESPECT_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }


def test_eight_threads_reading_then_writing_at_once_all_commit(tmp_path):
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sqlite_writers.py"))],
        cwd=ROOT,
        env=sqlite_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"errors": [], "studies": 8 * 15, "journal_mode": "wal"}


SIMULATION = [
    "simulate_study",
    "--name",
    "pilot",
    "--rounds",
    "1",
    "--games-per-system",
    "4",
    "--systems",
    "B-FFT,CONTROL,HH",
    "--speakers",
    "letters",
    "--context-size",
    "5",
    "--targets",
    "2-3",
]


def game_states(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT status, COUNT(*) FROM games_game GROUP BY status")
        return dict(rows.fetchall())


@pytest.mark.ml
def test_simulation_with_default_concurrency_survives_a_kill_and_resumes_on_sqlite(tmp_path):
    """The simulation plays 8 games at once against a thread-pool worker, both writing to one
    SQLite file; killed in the middle of play, it is started again with the same options and
    finishes the games it left in play (none stays "in play")."""
    from models_svc.tiny_models import learnable_tiny_idefics2

    env = sqlite_env(tmp_path)
    policy = learnable_tiny_idefics2(tmp_path / "tiny", seed=0)
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=300)
    command = [sys.executable, "manage.py", *SIMULATION, "--policy", f"hf:{policy}"]
    first = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    said = []
    try:
        for line in first.stderr:
            said.append(line)
            if "played 2/" in line:
                break
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL, "".join(said)[-3000:]
    second = subprocess.run(
        [*command, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    rows = json.loads(second.stdout.strip().splitlines()[-1])["rows"]
    assert [(row["round"], row["system"], row["games"]) for row in rows] == [
        (0, "B-FFT", 4),
        (0, "CONTROL", 4),
        (0, "HH", 4),
    ]
    assert game_states(tmp_path / "db.sqlite3") == {"ended": 12}
