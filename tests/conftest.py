"""Fixtures shared by every test package.

Tests run against the services named by ``DATABASE_URL`` and ``REDIS_URL`` (``run.py test``
points them at local PostgreSQL and Redis). Under ``CI=true`` a missing service or browser is an
error, never a skip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("RESPECT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def require(condition: bool, reason: str) -> None:
    """Skip outside CI when a prerequisite is missing; fail in CI, where it must be present."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "postgresql(reason): needs PostgreSQL (concurrent transactions or processes sharing the "
        "database); skipped on SQLite outside CI",
    )


@pytest.fixture(autouse=True)
def _needs_postgresql(request) -> None:
    """Tests marked ``postgresql`` say so on SQLite, where concurrent writers fail with
    "database table is locked" and child processes cannot see the in-memory test database."""
    marker = request.node.get_closest_marker("postgresql")
    if marker is None:
        return
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    reason = marker.args[0] if marker.args else "concurrent transactions"
    require("postgresql" in engine, f"needs PostgreSQL: {reason}")


# Helpers that Python's multiprocessing (and joblib's loky) start once and keep for the whole
# session: not a test's own process.
SESSION_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "loky")


def running_children() -> dict[int, str]:
    """This process's child processes that still run (not zombies, not the session helpers of
    ``SESSION_HELPERS``): pid → command line. Empty where there is no ``/proc``."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                text = command.decode(errors="replace").strip()
                if not any(helper in text for helper in SESSION_HELPERS):
                    children[int(stat.parent.name)] = text
        except (OSError, IndexError, ValueError):
            continue
    return children


def _kill_with_group(pid: int) -> None:
    """SIGKILL a child and, when it leads a process group of its own, everything in it."""
    with contextlib.suppress(OSError):
        group = os.getpgid(pid)
        if group == os.getpgid(0):
            os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


@pytest.fixture(autouse=True)
def _no_process_left_running() -> Iterator[None]:
    """A test must stop every process it started (servers, workers, helpers): one still running
    a few seconds after the test's own teardown is killed, with its process group, and the
    test fails naming it."""
    before = set(running_children())
    yield
    deadline = time.monotonic() + 10
    left = {pid: c for pid, c in running_children().items() if pid not in before}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {pid: c for pid, c in running_children().items() if pid not in before}
    if not left:
        return
    for pid in left:
        _kill_with_group(pid)
    pytest.fail(f"the test left processes running (now killed): {sorted(left.values())}")


@pytest.fixture(scope="session")
def celery_app_under_test():
    from config.celery import app

    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set: Celery tests need Redis")
    return app


@pytest.fixture
def celery_worker(celery_app_under_test, transactional_db) -> Iterator[object]:
    """A real Celery worker (threads pool) consuming every queue (``default``, ``gpu-live``,
    ``gpu-batch``), for the length of a test, starting from empty queues.

    It shares the test database through committed transactions, hence ``transactional_db``.
    Starting a worker sets up Celery's logging (root logger at ERROR, its own handlers); the
    root logger is put back afterwards so later tests still see warnings (``caplog``).
    """
    from celery.contrib.testing.worker import start_worker

    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    # Tasks that earlier tests queued with no worker running (a button pressed in a page test)
    # would otherwise be this worker's first work, for rows that no longer exist.
    celery_app_under_test.control.purge()
    with start_worker(
        celery_app_under_test,
        pool="threads",
        concurrency=2,
        queues=["default", "gpu-live", "gpu-batch"],
        perform_ping_check=False,
        shutdown_timeout=30,
    ) as worker:
        yield worker
    root.setLevel(root_level)
    root.handlers[:] = root_handlers


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    require(os.path.exists(CHROMIUM), f"Chromium not found at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
def browser(chromium_executable) -> Iterator[object]:
    """A headless Chromium driven by Playwright (never downloads a browser of its own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()
