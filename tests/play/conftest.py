from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from games.live.clock import FakeClock, use_clock
from tests.conftest import require

from .helpers import T0

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock():
    """Live play's clock, frozen at T0 until the test advances it."""
    fake = FakeClock(T0)
    with use_clock(fake):
        yield fake


@pytest.fixture(autouse=True)
def _no_deadline_tasks(settings):
    """Tests without a Celery worker do not leave deadline tasks in the broker."""
    settings.PLAY_DEADLINE_TASKS = False


@pytest.fixture(scope="session", autouse=True)
def _close_worker_thread_connections(django_db_setup, django_db_blocker):
    """Consumers run ORM code in pool threads whose connections outlive the tests; end them
    before the test database is dropped."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("daphne did not start")


class PlayServer:
    """A real daphne process serving the project against the test database."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        name = connection.settings_dict["NAME"]
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
            DJANGO_DEBUG="1",  # static files through WhiteNoise's finders
            PLAY_LOCAL_ENTRY="0",  # lobbies admit crowd participants only, as in production
            PLAY_DEADLINE_TASKS="0",
            TEST_DB_SUFFIX="",
            LOG_LEVEL="WARNING",
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
        )
        _wait_for_port(self.port, self.process)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def play_server(transactional_db):
    """A running daphne on a free loopback port, sharing the test database and Redis."""
    require(connection.vendor == "postgresql", "the live server tests need PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "the live server tests need Redis")
    server = PlayServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
