from __future__ import annotations

import pytest
from django.db import connection

from games.live.clock import FakeClock, use_clock

from .helpers import T0


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
