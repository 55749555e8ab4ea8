"""Celery tasks of live play (queue ``default``); registered through ``CELERY_INCLUDE``."""

from __future__ import annotations

from celery import shared_task

from games.live import engine, notify


@shared_task(name="games.live.tasks.expire_game", acks_late=True)
def expire_game(game_id: int) -> bool:
    """Apply a due timeout of one game (idempotent: nothing happens if none is due)."""
    change = engine.expire_due(game_id)
    notify.broadcast_sync(change)
    return change is not None


@shared_task(name="games.live.tasks.sweep_overdue_games", acks_late=True)
def sweep_overdue_games() -> int:
    """Apply every overdue timeout (for a periodic runner or after an outage)."""
    count = 0
    for game_id in engine.overdue_game_ids():
        count += expire_game(game_id)
    return count
