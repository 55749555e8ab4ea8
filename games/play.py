"""Public interface of live play for other areas.

``record_model_action`` is what the model service's ``listener_act`` task calls back with the
model listener's answer. Everything else lives in ``games.live``.
"""

from __future__ import annotations

from games.live import engine, notify


def record_model_action(
    game_id: int,
    turn_index: int,
    action: str,
    probability: float | None,
    reason: str = "",
    prompt_format: str = "",
    temperature: float | None = None,
    constrained: bool | None = None,
) -> None:
    """Record a model listener's action for a turn and tell the speaker.

    Late answers (the turn timed out and was recorded as ``model_timeout``), duplicates and answers
    for any other turn are ignored. An action string that breaks the grammar or does not fit the
    selection is recorded as the empty action with reason ``model_invalid_action``.
    ``temperature`` and ``constrained`` are the decoding setting p_t was sampled under.
    """
    notify.broadcast_sync(
        engine.record_model_action(
            game_id,
            turn_index,
            action,
            probability,
            reason,
            prompt_format,
            sampling=(temperature, constrained),
        )
    )
