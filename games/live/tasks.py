"""Celery tasks of live play (queue ``default``); registered through ``CELERY_INCLUDE``."""

from __future__ import annotations

from celery import shared_task

from games.live import engine, notify


def _expire(game_id: int) -> bool:
    change = engine.expire_due(game_id)
    notify.broadcast_sync(change)
    return change is not None


@shared_task(name="games.live.tasks.expire_game", acks_late=True)
def expire_game(game_id: int) -> bool:
    """Apply a due timeout of one game (idempotent: nothing happens if none is due), then queue
    itself again for the game's next deadline while the game goes on.

    One such task follows each game from its start (queued at pairing), so the timeout applies
    even when no web process is watching, at the cost of one task per deadline period rather
    than one per move. Moves that push the deadline back make a run find nothing due; it simply
    waits for the new deadline.
    """
    expired = _expire(game_id)
    notify.schedule_deadline_task(game_id, engine.pending_deadline(game_id))
    return expired


@shared_task(name="games.live.tasks.sweep_overdue_games", acks_late=True)
def sweep_overdue_games() -> int:
    """Apply every overdue timeout (for a periodic runner or after an outage)."""
    return sum(_expire(game_id) for game_id in engine.overdue_game_ids())
