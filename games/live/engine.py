"""A live MultiRef game's operations, each one transaction on the game row.

Every operation locks the game row (``SELECT ... FOR UPDATE``), first applies any timeout that is
due, then checks the sender's role and the phase, writes the change and its event (the rules are
in ``games.live.rules``), and returns a ``Change`` holding the new view of each player who must
hear of it (built by ``games.live.screens``). A refused message raises ``PlayError`` and changes
nothing. Messages arriving up to ``GRACE`` after a deadline still count (they were sent in time);
timers fire at the deadline plus ``GRACE``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction

from games.actions import ActionError, apply_action, letter_map, parse_action
from games.live import clock, rules, store
from games.live.rules import GRACE, JOIN_SECONDS, MODEL_INVALID, SERVER, Change, PlayError, Refused
from games.live.screens import (
    LISTENER,
    MODEL,
    SPEAKER,
    build_view,
    draft_view,
    model_listens,
    role_of,
)
from games.models import Game, GameEvent, Turn

logger = logging.getLogger("games.live")

Move = Callable[[Game, datetime], Change]


def _player_role(game: Game, worker_id: int | None) -> str:
    role = role_of(game, worker_id)
    if role is None:
        raise PlayError("forbidden", "you are not a player of this game")
    return role


def join(game_id: int, worker_id: int | None) -> tuple[dict, Change | None]:
    """A player (re)connects: record it, apply a timeout that is due, and return their view with
    the change the timeout made (None if none). Raises PlayError for anybody else."""
    now = clock.now()
    with transaction.atomic():
        game = rules.lock(game_id)
        role = _player_role(game, worker_id)
        rules.event(game, GameEvent.Kind.CONNECT, role, now)
        expired = rules.expire_locked(game, now)
        if expired:
            change = rules.change(game, now, earnings=expired.earnings)
            return change.views[role], change
        return build_view(game, role, store.turns(game.pk), now), None


def current_view(game_id: int, worker_id: int | None) -> dict:
    """The view of a player who (re)connects; raises PlayError for anybody else."""
    game = store.read_game(game_id)
    if game is None:
        raise PlayError("no_game", f"there is no game {game_id}")
    role = _player_role(game, worker_id)
    return build_view(game, role, store.turns(game.pk), clock.now())


def start_game(game: Game, now: datetime) -> None:
    """Open turn 0 of a new game (the caller is inside the transaction that created it)."""
    game.status = Game.Status.PLAYING
    game.started_at = now
    game.phase = Game.Phase.SPEAKER
    game.turn_index = 0
    game.listener_draft = []
    game.deadline = now + timedelta(seconds=game.study.speaker_seconds + JOIN_SECONDS)
    rules.save(game, "status", "started_at", "phase", "turn_index", "listener_draft", "deadline")
    store.insert(Turn(game_id=game.pk, index=0, selection_before=[], started_at=now))
    rules.event(game, GameEvent.Kind.START, SERVER, now)


def _locked_playing(
    game_id: int, worker_id: int | None, role: str, phase: str, move: Move
) -> Change | Refused:
    """Lock the game, apply a due timeout, and run ``move`` if ``worker_id`` may act now as
    ``role``.

    A refusal raises ``PlayError`` and changes nothing, unless a timeout took the turn away:
    then the timeout is committed and the players hear of it (``Refused``).
    """
    now = clock.now()
    with transaction.atomic():
        game = rules.lock(game_id)
        if _player_role(game, worker_id) != role:
            raise PlayError("wrong_role", f"only the {role} may do this")
        expired = rules.expire_locked(game, now)
        if game.status != Game.Status.PLAYING:
            refusal = PlayError("game_over", "the game is over")
        elif game.phase != phase:
            refusal = PlayError("not_your_turn", f"it is not the {role}'s turn")
        else:
            return move(game, now)
        if not expired:
            raise refusal
        return Refused(rules.change(game, now, earnings=expired.earnings), refusal)


def clean_utterance(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise PlayError("bad_message", "the utterance must be text")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if not cleaned:
        raise PlayError("empty_utterance", "the utterance is empty")
    if len(cleaned) > limit:
        raise PlayError("too_long", f"the utterance has {len(cleaned)} characters; at most {limit}")
    return cleaned


def submit_utterance(game_id: int, worker_id: int | None, text: object) -> Change | Refused:
    def speak(game: Game, now: datetime) -> Change:
        cleaned = clean_utterance(text, game.study.max_utterance_chars)
        turn = rules.current_turn(game)
        turn.utterance = cleaned
        turn.utterance_at = now
        if turn.started_at is not None:
            turn.speaker_seconds = (now - turn.started_at).total_seconds()
        store.update(turn, "utterance", "utterance_at", "speaker_seconds")
        game.phase = Game.Phase.LISTENER
        game.deadline = now + timedelta(seconds=game.study.listener_seconds)
        game.listener_draft = list(turn.selection_before)
        rules.save(game, "phase", "deadline", "listener_draft")
        rules.event(game, GameEvent.Kind.UTTERANCE, SPEAKER, now, text=cleaned)
        model_turn = turn.index if model_listens(game) else None
        return rules.change(game, now, model_turn=model_turn)

    return _locked_playing(game_id, worker_id, SPEAKER, Game.Phase.SPEAKER, speak)


def _check_tangram(game: Game, tangram: object) -> str:
    if not isinstance(tangram, str) or tangram not in set(game.config.listener_order):
        raise PlayError("not_in_context", f"image {str(tangram)[:64]!r} is not in this game")
    return tangram


def toggle(game_id: int, worker_id: int | None, tangram: object) -> Change | Refused:
    """Select or deselect one image in the listener's draft (stored at once)."""

    def flip(game: Game, now: datetime) -> Change:
        name = _check_tangram(game, tangram)
        draft = set(game.listener_draft) ^ {name}
        game.listener_draft = [t for t in game.config.listener_order if t in draft]
        rules.save(game, "listener_draft")
        rules.event(
            game, GameEvent.Kind.TOGGLE, LISTENER, now, tangram=name, selected=name in draft
        )
        return Change(game.pk, game.version, {LISTENER: draft_view(game)}, deadline=game.deadline)

    return _locked_playing(game_id, worker_id, LISTENER, Game.Phase.LISTENER, flip)


def submit_selection(
    game_id: int, worker_id: int | None, selection: object = None
) -> Change | Refused:
    """The listener submits; ``selection`` (image ids) if given, else the stored draft."""

    def answer(game: Game, now: datetime) -> Change:
        if selection is None:
            chosen = list(game.listener_draft)
        else:
            if not isinstance(selection, list) or len(selection) > len(game.config.listener_order):
                raise PlayError("bad_message", "the selection must be a list of image ids")
            chosen = [_check_tangram(game, name) for name in selection]
            if len(set(chosen)) != len(chosen):
                raise PlayError("bad_message", "the selection names an image twice")
        earned = rules.complete_turn(game, rules.current_turn(game), chosen, now, role=LISTENER)
        return rules.change(game, now, earnings=earned)

    return _locked_playing(game_id, worker_id, LISTENER, Game.Phase.LISTENER, answer)


def expire_due(game_id: int) -> Change | None:
    """Apply the current phase's timeout if it is due (idempotent); None when nothing was due."""
    now = clock.now()
    with transaction.atomic():
        try:
            game = rules.lock(game_id)
        except PlayError:
            return None
        expired = rules.expire_locked(game, now)
        if not expired:
            return None
        return rules.change(game, now, earnings=expired.earnings)


def resync(game_id: int, worker_id: int | None) -> tuple[dict, Change | None]:
    """A player asks for their view again: apply a due timeout first (see ``join``)."""
    change = expire_due(game_id)
    return current_view(game_id, worker_id), change


def pending_deadline(game_id: int) -> datetime | None:
    """The deadline of a game that is being played (None once it is over)."""
    return (
        Game.objects.filter(pk=game_id, status=Game.Status.PLAYING)
        .values_list("deadline", flat=True)
        .first()
    )


def overdue_game_ids(now: datetime | None = None) -> list[int]:
    cutoff = (now or clock.now()) - GRACE
    return list(
        Game.objects.filter(status=Game.Status.PLAYING, deadline__lt=cutoff).values_list(
            "pk", flat=True
        )
    )


def _model_selection(
    game: Game, turn: Turn, action: object, reason: object, now: datetime
) -> tuple[list[str], str] | None:
    """The images a model's action leaves selected, and its reason; None (with a ``REFUSED``
    event) if the action does not parse or does not apply."""
    letters_of = letter_map(game.config.listener_order)
    try:
        parsed = parse_action(
            action if isinstance(action, str) else "", len(game.config.listener_order)
        )
        letters = apply_action({letters_of[t] for t in turn.selection_before}, parsed)
        by_letter = {v: k for k, v in letters_of.items()}
        return [by_letter[letter] for letter in letters], str(reason or "")[:40]
    except ActionError as error:
        logger.warning(
            "game %s turn %s: invalid model action %r (%s); recorded as empty",
            game.pk,
            turn.index,
            action,
            error,
        )
        rules.event(
            game,
            GameEvent.Kind.REFUSED,
            MODEL,
            now,
            action=str(action)[:200],
            error=str(error)[:200],
        )
        return None


def _probability(value: float | None) -> float | None:
    """A probability in [0, 1], or None for anything else (the value comes from a worker's
    message, so a non-number is refused too)."""
    if value is None:
        return None
    try:
        probability = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(probability) or not 0 <= probability <= 1 else probability


def _sampling(value: tuple) -> tuple[float | None, bool | None]:
    """A positive finite temperature and a boolean, or None for anything else (worker data)."""
    temperature, constrained = value
    try:
        number = float(temperature) if temperature is not None else None
    except (TypeError, ValueError):
        number = None
    if number is not None and not (math.isfinite(number) and number > 0):
        number = None
    return number, constrained if isinstance(constrained, bool) else None


def record_model_action(
    game_id: int,
    turn_index: int,
    action: str,
    probability: float | None,
    reason: str = "",
    prompt_format: str = "",
    sampling: tuple[float | None, bool | None] = (None, None),
) -> Change | None:
    """A model listener's answer, with the prompt format and the sampling setting
    (temperature, constrained) it was produced under. Late, duplicate or misplaced answers are
    ignored (logged)."""
    now = clock.now()
    with transaction.atomic():
        try:
            game = rules.lock(game_id)
        except PlayError:
            logger.warning("model answer for unknown game %s ignored", game_id)
            return None
        expired = rules.expire_locked(game, now)
        if (
            game.status != Game.Status.PLAYING
            or game.phase != Game.Phase.LISTENER
            or game.turn_index != turn_index
            or not model_listens(game)
        ):
            logger.info(
                "model answer for game %s turn %s ignored: the turn is over", game_id, turn_index
            )
            return rules.change(game, now, earnings=expired.earnings) if expired else None
        turn = rules.current_turn(game)
        answer = _model_selection(game, turn, action, reason, now)
        if answer is None:
            after, reason_text, probability = list(turn.selection_before), MODEL_INVALID, None
        else:
            after, reason_text = answer
        earned = rules.complete_turn(
            game,
            turn,
            after,
            now,
            role=MODEL,
            reason=reason_text,
            probability=_probability(probability),
            prompt_format=str(prompt_format or "")[:40],
            sampling=_sampling(sampling) if probability is not None else (None, None),
        )
        return rules.change(game, now, earnings=earned)


def record_event(game_id: int, kind: str, role: str, **payload) -> None:
    """Store a connection event or a refused message (nothing happens if there is no game)."""
    store.record_event(game_id, kind, role, payload, clock.now())
