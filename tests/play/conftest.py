from __future__ import annotations

import pytest

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
