"""Deadline timers inside a web process: one per game and event loop, deduplicated.

Each consumer that learns a game's deadline asks for a timer; when it fires, the timeout is
applied through ``engine.expire_due`` (which re-checks the deadline under the row lock, so a timer
that fires twice, or in two processes, does no harm). The ``default``-queue task queued with every
deadline is the backstop when no web process is watching the game.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime

from games.live import clock
from games.live.engine import GRACE

logger = logging.getLogger("games.live")

Fire = Callable[[int], Awaitable[None]]
_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _registry() -> dict[int, tuple[datetime, asyncio.TimerHandle]]:
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = {}
    return registry


def schedule(game_id: int, deadline: datetime | None, fire: Fire) -> None:
    """Make sure a timer will call ``fire(game_id)`` just after ``deadline`` (None cancels)."""
    registry = _registry()
    existing = registry.get(game_id)
    if existing is not None and existing[0] == deadline:
        return
    if existing is not None:
        existing[1].cancel()
        del registry[game_id]
    if deadline is None:
        return
    delay = max(0.0, (deadline + GRACE - clock.now()).total_seconds()) + 0.05

    def run() -> None:
        if registry.get(game_id, (None,))[0] == deadline:
            del registry[game_id]
        task = asyncio.ensure_future(fire(game_id))
        task.add_done_callback(_log_failure)

    registry[game_id] = (deadline, asyncio.get_running_loop().call_later(delay, run))


def pending(game_id: int) -> datetime | None:
    entry = _registry().get(game_id)
    return None if entry is None else entry[0]


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("deadline timer failed", exc_info=task.exception())
