"""Telling connected players about a change, and queueing the follow-up work it needs.

Consumers send from the event loop; Celery tasks and ``record_model_action`` send from sync
code. Both go through the channel layer group of the game, so any web process holding a
player's socket delivers it (Redis layer); pages also resynchronise from the database on
reconnect, so a lost message costs nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from config.celery import app as celery_app
from games.live.engine import GRACE, Change

logger = logging.getLogger("games.live")

LISTENER_ACT_TASK = "models_svc.tasks.listener_act"
DEADLINE_TASK = "games.live.tasks.expire_game"


def game_group(game_id: int) -> str:
    return f"play.game.{game_id}"


def worker_group(worker_id: int) -> str:
    return f"play.worker.{worker_id}"


def update_message(change: Change) -> dict:
    return {"type": "game.update", "version": change.version, "views": change.views}


def has_followups(change: Change) -> bool:
    """Whether ``send_followups`` has anything to queue for this change."""
    return change.model_turn is not None


def send_followups(change: Change) -> None:
    """Queue the model's turn, if the change hands the turn to a model (sync; after the change
    committed). Deadlines need nothing per change: each game's deadline task follows the game
    from its start (see ``games.live.tasks.expire_game``)."""
    if change.model_turn is not None:
        request_model_turn(change.game_id, change.model_turn)


def request_model_turn(game_id: int, turn_index: int) -> None:
    """Queue the model listener's answer to a turn (the task is idempotent)."""
    celery_app.send_task(
        LISTENER_ACT_TASK, args=[game_id, turn_index], queue=settings.GPU_LIVE_QUEUE
    )


def deadline_tasks_enabled() -> bool:
    return bool(getattr(settings, "PLAY_DEADLINE_TASKS", True))


def schedule_deadline_task(game_id: int, deadline: datetime | None) -> None:
    """A `default`-queue task that applies the timeout even if no web process is watching."""
    if deadline is None or not deadline_tasks_enabled():
        return
    try:
        celery_app.send_task(DEADLINE_TASK, args=[game_id], queue="default", eta=deadline + GRACE)
    except Exception:  # the broker being down must not fail a player's move
        logger.exception("could not queue the deadline check of game %s", game_id)


def broadcast_sync(change: Change | None) -> None:
    """Tell the players of ``change`` (from sync code) and queue its follow-ups."""
    if change is None:
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(game_group(change.game_id), update_message(change))
    send_followups(change)
