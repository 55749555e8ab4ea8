"""The clock of live play, replaceable in tests (``use_clock``) so timers run on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_now: Callable[[], datetime] = timezone.now


def now() -> datetime:
    return _now()


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Run the block with ``clock`` as the time source of live play."""
    global _now
    previous, _now = _now, clock
    try:
        yield
    finally:
        _now = previous


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or timezone.now()

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current
