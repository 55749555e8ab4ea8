"""Celery tasks of the model service (all routed to the ``gpu`` queue). Thin: ids in, services
do the work. ``acks_late`` (settings) makes a killed worker's job come back; transient database
errors are retried with back-off; a bad checkpoint fails at once with a clear message.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .selectors import TurnNotReady

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, ConnectionError)


@shared_task(
    name="models_svc.tasks.listener_act",
    bind=True,
    acks_late=True,
    soft_time_limit=40,
    time_limit=60,
    autoretry_for=TRANSIENT,
    retry_backoff=1,
    retry_backoff_max=8,
    max_retries=3,
)
def listener_act(self, game_id: int, turn_index: int) -> dict | None:
    """Act as the listener of ``game_id`` on turn ``turn_index`` and report the action back.

    Idempotent: a turn that is already answered is left alone, and sampling is seeded by the
    game and turn, so a redelivered task proposes the same action.
    """
    from .services import act_for_turn

    try:
        decision = act_for_turn(game_id, turn_index)
    except TurnNotReady as exc:
        raise self.retry(exc=exc, countdown=0.5, max_retries=10) from exc
    if decision is None:
        return None
    return {"action": decision.action, "probability": decision.probability}
