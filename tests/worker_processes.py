"""Real Celery worker processes for fault drills: started with the test database, killed
with SIGKILL (the whole process group, as when a host or container dies), waited on by
condition, never by sleeping a fixed time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def worker_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database, with ``extra`` settings."""
    database = settings.DATABASES["default"]
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "PLAY_DEADLINE_TASKS": "0",
        **extra,
    }


def start_worker(
    queue: str, env: dict[str, str], log: Path, pool: tuple[str, ...] = ("--pool", "solo")
) -> subprocess.Popen:
    """``celery -A config worker`` on ``queue`` (by default the solo pool: one task at a
    time)."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
    command += [*pool, "--loglevel", "INFO"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(worker: subprocess.Popen) -> None:
    """SIGKILL the worker and everything it started (also when the worker itself has ended
    and something it started has not)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(30)


def stop(worker: subprocess.Popen) -> None:
    """A warm shutdown, or a kill when it does not end in time."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            kill(worker)


def wait_for(condition: Callable[[], T], timeout: float, what: str, *logs: Path) -> T:
    """Poll ``condition`` until it returns something true; fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def finished_tasks(log: Path, task_name: str) -> int:
    """How many deliveries of ``task_name`` the worker writing ``log`` has finished."""
    if not log.exists():
        return 0
    lines = log.read_text(errors="replace").splitlines()
    return sum(f"Task {task_name}[" in line and " succeeded in " in line for line in lines)
