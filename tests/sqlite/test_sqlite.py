"""The embedded database (SQLite, the demo's default) under real concurrency, in subprocesses
pointed at a temporary ``DATABASE_URL=sqlite:///…``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
