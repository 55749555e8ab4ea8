"""The rules of a live MultiRef game, applied to a game row its caller has locked.

These functions change the game, its turns and events, and nothing else: ``games.live.engine``
opens the transaction, locks the row, calls them, and turns the result into a ``Change``.
Messages arriving up to ``GRACE`` after a deadline still count (they were sent in time);
timers fire at the deadline plus ``GRACE``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from games.actions import action_between
from games.live import store
from games.live.earnings import Earnings, award
from games.live.screens import (
    LISTENER,
    MODEL,
    SPEAKER,
    human_players,
    human_roles,
    model_listens,
    views_for,
)
from games.models import Game, GameEvent, Turn

logger = logging.getLogger("games.live")

SERVER = "server"

GRACE = timedelta(seconds=1)
JOIN_SECONDS = 5
MODEL_TIMEOUT = "model_timeout"
MODEL_INVALID = "model_invalid_action"
LISTENER_TIMEOUT = "listener_timeout"


class PlayError(Exception):
    """A message that the game refuses; nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Change:
    """What an operation changed: the new views of the players to tell, and follow-up work."""

    game_id: int
    version: int
    views: dict[str, dict] = field(default_factory=dict)
    ended: bool = False
    model_turn: int | None = None
    deadline: datetime | None = None


@dataclass
class Refused:
    """A refusal that came after a committed timeout: tell the players, then refuse."""

    change: Change
    error: PlayError


@dataclass(frozen=True)
class Expired:
    """A timeout was applied; ``earnings`` are the rows written if it ended the game."""

    earnings: Earnings | None = None


def lock(game_id: int) -> Game:
    """The game row, locked until the transaction ends, with its study, config and system."""
    game = store.lock_game(game_id)
    if game is None:
        raise PlayError("no_game", f"there is no game {game_id}")
    return game


def event(game: Game, kind: str, role: str, now: datetime, **payload) -> None:
    store.insert(
        GameEvent(
            game_id=game.pk,
            turn_index=game.turn_index,
            kind=kind,
            role=role,
            payload=payload,
            created_at=now,
        )
    )


def current_turn(game: Game) -> Turn:
    turn = store.current_turn(game)
    if turn is None:
        raise Turn.DoesNotExist(f"game {game.pk} has no turn {game.turn_index}")
    return turn


def save(game: Game, *fields: str) -> None:
    game.version += 1
    store.update(game, *fields, "version")


def end(game: Game, outcome: str, reason: str, now: datetime, idler: int | None = None) -> Earnings:
    """End the game and pay its players; returns the earnings written, for the end views."""
    game.status = Game.Status.ENDED
    game.outcome = outcome
    game.end_reason = reason
    game.ended_at = now
    game.phase = Game.Phase.NONE
    game.deadline = None
    save(game, "status", "outcome", "end_reason", "ended_at", "phase", "deadline")
    event(game, GameEvent.Kind.END, SERVER, now, outcome=outcome, reason=reason)
    awarded = award(game, store.turns(game.pk), human_players(game), idler)
    logger.info("game %s ended: %s (%s)", game.pk, outcome, reason)
    return awarded


def complete_turn(
    game: Game,
    turn: Turn,
    after: Iterable[str],
    now: datetime,
    *,
    role: str,
    reason: str = "",
    probability: float | None = None,
    prompt_format: str = "",
    sampling: tuple[float | None, bool | None] = (None, None),
) -> Earnings | None:
    """Record the listener's answer and open the next turn or end the game; returns the earnings
    written if the game ended."""
    listener_order = list(game.config.listener_order)
    chosen = set(after)
    ordered = [name for name in listener_order if name in chosen]
    turn.selection_after = ordered
    turn.action = action_between(listener_order, turn.selection_before, ordered)
    turn.action_reason = reason
    turn.action_probability = probability
    turn.prompt_format = prompt_format
    turn.sampling_temperature, turn.sampling_constrained = sampling
    turn.submitted_at = now
    if turn.utterance_at is not None:
        turn.listener_seconds = (now - turn.utterance_at).total_seconds()
    store.update(
        turn,
        "selection_after",
        "action",
        "action_reason",
        "action_probability",
        "prompt_format",
        "sampling_temperature",
        "sampling_constrained",
        "submitted_at",
        "listener_seconds",
    )
    kind = GameEvent.Kind.MODEL_ACTION if role == MODEL else GameEvent.Kind.SUBMIT
    event(
        game,
        kind,
        role,
        now,
        selection=ordered,
        action=turn.action,
        reason=reason,
        probability=probability,
    )
    if chosen == set(game.config.targets):
        return end(game, Game.Outcome.SUCCESSFUL, "all targets selected", now)
    if turn.index + 1 >= game.study.turn_limit:
        return end(game, Game.Outcome.UNSUCCESSFUL, "turn limit reached", now)
    game.turn_index = turn.index + 1
    game.phase = Game.Phase.SPEAKER
    game.deadline = now + timedelta(seconds=game.study.speaker_seconds)
    game.listener_draft = ordered
    save(game, "turn_index", "phase", "deadline", "listener_draft")
    store.insert(
        Turn(game_id=game.pk, index=game.turn_index, selection_before=ordered, started_at=now)
    )
    return None


def expire_locked(game: Game, now: datetime) -> Expired | None:
    """Apply the timeout of the current phase if it is due; None if nothing changed."""
    if game.status != Game.Status.PLAYING or game.deadline is None or now < game.deadline + GRACE:
        return None
    study = game.study
    if game.phase == Game.Phase.SPEAKER:
        event(game, GameEvent.Kind.TIMEOUT, SPEAKER, now)
        if study.idle_ends_game or game.speaker_warnings >= 1:
            return Expired(end(game, Game.Outcome.IDLE, "speaker idled", now, game.speaker_id))
        game.speaker_warnings += 1
        game.deadline = now + timedelta(seconds=study.speaker_seconds)
        save(game, "speaker_warnings", "deadline")
        event(game, GameEvent.Kind.WARNING, SPEAKER, now)
        return Expired()
    if game.phase == Game.Phase.LISTENER:
        turn = current_turn(game)
        if model_listens(game):
            event(game, GameEvent.Kind.TIMEOUT, MODEL, now)
            logger.warning("game %s turn %s: the model did not answer in time", game.pk, turn.index)
            return Expired(
                complete_turn(
                    game, turn, turn.selection_before, now, role=MODEL, reason=MODEL_TIMEOUT
                )
            )
        event(game, GameEvent.Kind.TIMEOUT, LISTENER, now)
        if study.idle_ends_game or game.listener_warnings >= 1:
            return Expired(end(game, Game.Outcome.IDLE, "listener idled", now, game.listener_id))
        game.listener_warnings += 1
        store.update(game, "listener_warnings")
        event(game, GameEvent.Kind.WARNING, LISTENER, now)
        return Expired(
            complete_turn(
                game, turn, turn.selection_before, now, role=LISTENER, reason=LISTENER_TIMEOUT
            )
        )
    return None


def change(
    game: Game,
    now: datetime,
    roles: Iterable[str] | None = None,
    model_turn: int | None = None,
    earnings: Earnings | None = None,
) -> Change:
    """The change to announce: the new views of ``roles`` (the human players by default)."""
    roles = human_roles(game) if roles is None else roles
    return Change(
        game_id=game.pk,
        version=game.version,
        views=views_for(game, roles, now, earnings=earnings),
        ended=game.status == Game.Status.ENDED,
        model_turn=model_turn,
        deadline=game.deadline,
    )
