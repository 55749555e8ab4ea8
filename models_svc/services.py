"""Writes and orchestration of the model service (policies acting, decoding, embeddings)."""

from __future__ import annotations

import logging

from games.models import Game, Turn

from .interfaces import PolicyDecision
from .registry import default_spec, get_policy
from .selectors import policy_input_for_turn

logger = logging.getLogger(__name__)


def policy_spec_for_game(game: Game) -> str:
    """The game's system's policy checkpoint, or the configured default policy."""
    return game.system.policy_checkpoint.strip() or default_spec("policy") or "random"


def act_for_turn(game_id: int, turn_index: int) -> PolicyDecision | None:
    """Run the game's policy on a turn and hand the action to ``games.play``.

    Returns None (and does nothing) when the turn is already answered.
    """
    from games.play import record_model_action

    game = Game.objects.select_related("system").get(pk=game_id)
    if game.system.is_human:
        raise ValueError(f"game {game_id} has human listeners (system HH): no model acts in it")
    if Turn.objects.filter(
        game_id=game_id, index=turn_index, selection_after__isnull=False
    ).exists():
        logger.info("game %s turn %s is already answered; nothing to do", game_id, turn_index)
        return None
    inputs = policy_input_for_turn(game_id, turn_index)
    policy = get_policy(policy_spec_for_game(game))
    decision = policy.act([inputs])[0]
    record_model_action(
        game_id, turn_index, decision.action, decision.probability, reason=decision.reason
    )
    return decision
