"""The rules of a live MultiRef game, as transactions on the game row.

Every operation locks the game row (``SELECT ... FOR UPDATE``), first applies any timeout that is
due, then checks the sender's role and the phase, writes the change and its event, and returns a
``Change`` holding the new view of each player who must hear of it. A refused message raises
``PlayError`` and changes nothing. Messages arriving up to ``GRACE`` after a deadline still count
(they were sent in time); timers fire at the deadline plus ``GRACE``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.db import transaction

from games.actions import ActionError, action_between, apply_action, letter_map, parse_action
from games.live import clock, store
from games.models import Game, GameEarning, GameEvent, Turn

logger = logging.getLogger("games.live")

SPEAKER = "speaker"
LISTENER = "listener"
MODEL = "model"
SERVER = "server"

GRACE = timedelta(seconds=1)
CENT = Decimal("0.01")
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


ImageUrl = Callable[[str], str]


@lru_cache(maxsize=8192)
def _default_image_url(name: str) -> str:
    """A tangram's image URL (fixed for the life of the process, so reversed once per name)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("games:tangram_image", args=[name])
    except NoReverseMatch:
        return f"/tangrams/{name}.png"


# ----------------------------------------------------------------------------- reading


def role_of(game: Game, worker_id: int | None) -> str | None:
    """The role of a worker in a game, or None for anybody else."""
    if worker_id is None:
        return None
    if game.speaker_id == worker_id:
        return SPEAKER
    if game.listener_id == worker_id and game.listener_id is not None:
        return LISTENER
    return None


def model_listens(game: Game) -> bool:
    return not game.system.is_human


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def correct_clicks(turns: Iterable[Turn], targets: Iterable[str]) -> tuple[int, int]:
    """(correct clicks, clicks) as click accuracy counts them (docs/metrics.md), over answered
    turns."""
    target_set = set(targets)
    correct = total = 0
    for turn in turns:
        if turn.selection_after is None:
            continue
        before, after = set(turn.selection_before), set(turn.selection_after)
        for name in after - before:
            total += 1
            correct += name in target_set
        for name in before - after:
            total += 1
            correct += name not in target_set
    return correct, total


def build_view(
    game: Game,
    role: str,
    turns: list[Turn],
    now: datetime,
    image_url: ImageUrl = _default_image_url,
    earnings: dict[int, list[GameEarning]] | None = None,
) -> dict:
    """What one player may see. The listener's view never names the targets."""
    config = game.config
    study = game.study
    targets = set(config.targets)
    is_speaker = role == SPEAKER
    order = config.speaker_order if is_speaker else config.listener_order
    letters = letter_map(config.listener_order)
    images = []
    for name in order:
        image = {"id": name, "url": image_url(name)}
        if is_speaker:
            image["target"] = name in targets
        else:
            image["letter"] = letters[name]
        images.append(image)
    history = []
    for turn in turns:
        entry: dict = {"index": turn.index, "utterance": turn.utterance}
        if turn.selection_after is not None:
            entry["selection"] = list(turn.selection_after)
            entry["reason"] = turn.action_reason
            if not is_speaker:
                entry["action"] = turn.action
        history.append(entry)
    current = turns[-1] if turns else None
    answered = [t for t in turns if t.selection_after is not None]
    selection = list(answered[-1].selection_after or []) if answered else []
    view: dict = {
        "type": "state",
        "game": game.pk,
        "role": role,
        "status": game.status,
        "phase": game.phase,
        "turn": game.turn_index,
        "turn_limit": study.turn_limit,
        "deadline_ms": _ms(game.deadline),
        "server_ms": _ms(now),
        "version": game.version,
        "max_chars": study.max_utterance_chars,
        "seconds": {SPEAKER: study.speaker_seconds, LISTENER: study.listener_seconds},
        "warnings": game.speaker_warnings if is_speaker else game.listener_warnings,
        "images": images,
        "history": history,
        "selection": selection,
        "utterance": current.utterance if current and game.phase == Game.Phase.LISTENER else "",
        "outcome": game.outcome,
        "end_reason": game.end_reason,
        "partner": MODEL if model_listens(game) else "human",
    }
    if not is_speaker:
        view["draft"] = list(game.listener_draft)
    if game.status == Game.Status.ENDED:
        worker_id = game.speaker_id if is_speaker else game.listener_id
        rows: list[GameEarning] = []
        if worker_id is not None:
            stored = (earnings or {}).get(worker_id)
            rows = (
                stored
                if stored is not None
                else list(GameEarning.objects.filter(game=game, worker_id=worker_id))
            )
        view["earned"] = {row.kind: str(row.amount) for row in rows}
        view["earned_total"] = str(sum((row.amount for row in rows), Decimal("0.00")))
        correct, total = correct_clicks(turns, targets)
        view["clicks"] = {"correct": correct, "total": total}
    return view


def views_for(game: Game, roles: Iterable[str], now: datetime, turns: list[Turn] | None = None):
    if turns is None:
        turns = store.turns(game.pk)
    earnings = getattr(game, "_awarded", None)
    return {role: build_view(game, role, turns, now, earnings=earnings) for role in roles}


def human_roles(game: Game) -> list[str]:
    return [SPEAKER] if model_listens(game) else [SPEAKER, LISTENER]


def join(game_id: int, worker_id: int | None) -> tuple[dict, Change | None]:
    """A player (re)connects: record it, apply a timeout that is due, and return their view with
    the change the timeout made (None if none). Raises PlayError for anybody else."""
    now = clock.now()
    with transaction.atomic():
        game = _lock(game_id)
        role = role_of(game, worker_id)
        if role is None:
            raise PlayError("forbidden", "you are not a player of this game")
        _event(game, GameEvent.Kind.CONNECT, role, now)
        if _expire_locked(game, now):
            change = _change(game, now)
            return change.views[role], change
        return build_view(game, role, store.turns(game.pk), now), None


def current_view(game_id: int, worker_id: int | None) -> dict:
    """The view of a player who (re)connects; raises PlayError for anybody else."""
    game = store.read_game(game_id)
    if game is None:
        raise PlayError("no_game", f"there is no game {game_id}")
    role = role_of(game, worker_id)
    if role is None:
        raise PlayError("forbidden", "you are not a player of this game")
    return build_view(game, role, store.turns(game.pk), clock.now())


# ----------------------------------------------------------------------------- writing


def _lock(game_id: int) -> Game:
    """The game row, locked until the transaction ends, with its study, config and system."""
    game = store.lock_game(game_id)
    if game is None:
        raise PlayError("no_game", f"there is no game {game_id}")
    return game


def _event(game: Game, kind: str, role: str, now: datetime, **payload) -> None:
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


def _current_turn(game: Game) -> Turn:
    turn = store.current_turn(game)
    if turn is None:
        raise Turn.DoesNotExist(f"game {game.pk} has no turn {game.turn_index}")
    return turn


def _save(game: Game, *fields: str) -> None:
    game.version += 1
    store.update(game, *fields, "version")


def start_game(game: Game, now: datetime) -> None:
    """Open turn 0 of a new game (the caller is inside the transaction that created it)."""
    game.status = Game.Status.PLAYING
    game.started_at = now
    game.phase = Game.Phase.SPEAKER
    game.turn_index = 0
    game.listener_draft = []
    game.deadline = now + timedelta(seconds=game.study.speaker_seconds + JOIN_SECONDS)
    _save(game, "status", "started_at", "phase", "turn_index", "listener_draft", "deadline")
    store.insert(Turn(game_id=game.pk, index=0, selection_before=[], started_at=now))
    _event(game, GameEvent.Kind.START, SERVER, now)


def _award(game: Game, turns: list[Turn], idler: int | None) -> dict[int, list[GameEarning]]:
    """Earnings of the human players; an idling player is not paid (the study's rule, see
    docs/protocols.md, "Payments").

    Stored in one statement; rows that already exist are left as they are (a game ends once,
    under its row lock, so there are none). Returns the rows by worker, every player included,
    for the end-of-game views.
    """
    study = game.study
    correct, _ = correct_clicks(turns, game.config.targets)
    players = [game.speaker_id] if model_listens(game) else [game.speaker_id, game.listener_id]
    awarded: dict[int, list[GameEarning]] = {}
    for worker_id in players:
        if worker_id is None:
            continue
        awarded[worker_id] = []
        if worker_id == idler:
            continue
        amounts = [(GameEarning.Kind.BASE, study.base_pay, "per game")]
        if game.outcome == Game.Outcome.SUCCESSFUL:
            amounts.append((GameEarning.Kind.SUCCESS_BONUS, study.success_bonus, "success"))
        if correct and study.correct_click_bonus:
            amounts.append(
                (
                    GameEarning.Kind.CLICK_BONUS,
                    study.correct_click_bonus * correct,
                    f"{correct} correct clicks",
                )
            )
        for kind, amount, detail in amounts:
            if amount > 0:
                awarded[worker_id].append(
                    GameEarning(
                        worker_id=worker_id,
                        game_id=game.pk,
                        kind=kind,
                        amount=amount.quantize(CENT),
                        detail=detail,
                    )
                )
    GameEarning.objects.bulk_create(
        [row for rows in awarded.values() for row in rows], ignore_conflicts=True
    )
    return awarded


def _end(game: Game, outcome: str, reason: str, now: datetime, idler: int | None = None) -> None:
    game.status = Game.Status.ENDED
    game.outcome = outcome
    game.end_reason = reason
    game.ended_at = now
    game.phase = Game.Phase.NONE
    game.deadline = None
    _save(game, "status", "outcome", "end_reason", "ended_at", "phase", "deadline")
    _event(game, GameEvent.Kind.END, SERVER, now, outcome=outcome, reason=reason)
    game._awarded = _award(game, store.turns(game.pk), idler)
    logger.info("game %s ended: %s (%s)", game.pk, outcome, reason)


def _complete_turn(
    game: Game,
    turn: Turn,
    after: Iterable[str],
    now: datetime,
    *,
    role: str,
    reason: str = "",
    probability: float | None = None,
    prompt_format: str = "",
) -> None:
    """Record the listener's answer and open the next turn or end the game."""
    listener_order = list(game.config.listener_order)
    chosen = set(after)
    ordered = [name for name in listener_order if name in chosen]
    turn.selection_after = ordered
    turn.action = action_between(listener_order, turn.selection_before, ordered)
    turn.action_reason = reason
    turn.action_probability = probability
    turn.prompt_format = prompt_format
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
        "submitted_at",
        "listener_seconds",
    )
    kind = GameEvent.Kind.MODEL_ACTION if role == MODEL else GameEvent.Kind.SUBMIT
    _event(
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
        _end(game, Game.Outcome.SUCCESSFUL, "all targets selected", now)
    elif turn.index + 1 >= game.study.turn_limit:
        _end(game, Game.Outcome.UNSUCCESSFUL, "turn limit reached", now)
    else:
        game.turn_index = turn.index + 1
        game.phase = Game.Phase.SPEAKER
        game.deadline = now + timedelta(seconds=game.study.speaker_seconds)
        game.listener_draft = ordered
        _save(game, "turn_index", "phase", "deadline", "listener_draft")
        store.insert(
            Turn(game_id=game.pk, index=game.turn_index, selection_before=ordered, started_at=now)
        )


def _expire_locked(game: Game, now: datetime) -> bool:
    """Apply the timeout of the current phase if it is due; True if anything changed."""
    if game.status != Game.Status.PLAYING or game.deadline is None or now < game.deadline + GRACE:
        return False
    study = game.study
    if game.phase == Game.Phase.SPEAKER:
        _event(game, GameEvent.Kind.TIMEOUT, SPEAKER, now)
        if study.idle_ends_game or game.speaker_warnings >= 1:
            _end(game, Game.Outcome.IDLE, "speaker idled", now, idler=game.speaker_id)
        else:
            game.speaker_warnings += 1
            game.deadline = now + timedelta(seconds=study.speaker_seconds)
            _save(game, "speaker_warnings", "deadline")
            _event(game, GameEvent.Kind.WARNING, SPEAKER, now)
        return True
    if game.phase == Game.Phase.LISTENER:
        turn = _current_turn(game)
        if model_listens(game):
            _event(game, GameEvent.Kind.TIMEOUT, MODEL, now)
            logger.warning("game %s turn %s: the model did not answer in time", game.pk, turn.index)
            _complete_turn(game, turn, turn.selection_before, now, role=MODEL, reason=MODEL_TIMEOUT)
            return True
        _event(game, GameEvent.Kind.TIMEOUT, LISTENER, now)
        if study.idle_ends_game or game.listener_warnings >= 1:
            _end(game, Game.Outcome.IDLE, "listener idled", now, idler=game.listener_id)
        else:
            game.listener_warnings += 1
            store.update(game, "listener_warnings")
            _event(game, GameEvent.Kind.WARNING, LISTENER, now)
            _complete_turn(
                game, turn, turn.selection_before, now, role=LISTENER, reason=LISTENER_TIMEOUT
            )
        return True
    return False


def _change(
    game: Game, now: datetime, roles: Iterable[str] | None = None, model_turn: int | None = None
) -> Change:
    roles = human_roles(game) if roles is None else roles
    return Change(
        game_id=game.pk,
        version=game.version,
        views=views_for(game, roles, now),
        ended=game.status == Game.Status.ENDED,
        model_turn=model_turn,
        deadline=game.deadline,
    )


def _acting(game_id: int, worker_id: int | None, role: str, phase: str, now: datetime):
    """Lock the game, apply due timeouts, and check that ``worker_id`` may act now as ``role``.

    Returns (game, expired). If a timeout took the turn away, the message is refused after the
    timeout is committed, so the caller gets ``expired`` and the refusal code instead of a change.
    """
    game = _lock(game_id)
    actual = role_of(game, worker_id)
    if actual is None:
        raise PlayError("forbidden", "you are not a player of this game")
    if actual != role:
        raise PlayError("wrong_role", f"only the {role} may do this")
    expired = _expire_locked(game, now)
    if game.status != Game.Status.PLAYING:
        return game, expired, PlayError("game_over", "the game is over")
    if game.phase != phase:
        return game, expired, PlayError("not_your_turn", f"it is not the {role}'s turn")
    return game, expired, None


def _run(fn):
    """Run a locking operation; a refusal that follows an applied timeout still commits it."""
    with transaction.atomic():
        return fn()


def clean_utterance(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise PlayError("bad_message", "the utterance must be text")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if not cleaned:
        raise PlayError("empty_utterance", "the utterance is empty")
    if len(cleaned) > limit:
        raise PlayError("too_long", f"the utterance has {len(cleaned)} characters; at most {limit}")
    return cleaned


@dataclass
class Refused:
    """A refusal that came after a committed timeout: tell the players, then refuse."""

    change: Change
    error: PlayError


def submit_utterance(game_id: int, worker_id: int | None, text: object) -> Change | Refused:
    now = clock.now()

    def op():
        game, expired, refusal = _acting(game_id, worker_id, SPEAKER, Game.Phase.SPEAKER, now)
        if refusal:
            if expired:
                return Refused(_change(game, now), refusal)
            raise refusal
        cleaned = clean_utterance(text, game.study.max_utterance_chars)
        turn = _current_turn(game)
        turn.utterance = cleaned
        turn.utterance_at = now
        if turn.started_at is not None:
            turn.speaker_seconds = (now - turn.started_at).total_seconds()
        store.update(turn, "utterance", "utterance_at", "speaker_seconds")
        game.phase = Game.Phase.LISTENER
        game.deadline = now + timedelta(seconds=game.study.listener_seconds)
        game.listener_draft = list(turn.selection_before)
        _save(game, "phase", "deadline", "listener_draft")
        _event(game, GameEvent.Kind.UTTERANCE, SPEAKER, now, text=cleaned)
        model_turn = turn.index if model_listens(game) else None
        return _change(game, now, model_turn=model_turn)

    return _run(op)


def _check_tangram(game: Game, tangram: object) -> str:
    if not isinstance(tangram, str) or tangram not in set(game.config.listener_order):
        raise PlayError("not_in_context", f"image {str(tangram)[:64]!r} is not in this game")
    return tangram


def toggle(game_id: int, worker_id: int | None, tangram: object) -> Change | Refused:
    """Select or deselect one image in the listener's draft (stored at once)."""
    now = clock.now()

    def op():
        game, expired, refusal = _acting(game_id, worker_id, LISTENER, Game.Phase.LISTENER, now)
        if refusal:
            if expired:
                return Refused(_change(game, now), refusal)
            raise refusal
        name = _check_tangram(game, tangram)
        draft = set(game.listener_draft) ^ {name}
        game.listener_draft = [t for t in game.config.listener_order if t in draft]
        _save(game, "listener_draft")
        _event(game, GameEvent.Kind.TOGGLE, LISTENER, now, tangram=name, selected=name in draft)
        # Only the listener's own screen changes: a small message, no history to rebuild.
        draft_view = {
            "type": "draft",
            "game": game.pk,
            "version": game.version,
            "status": game.status,
            "phase": game.phase,
            "turn": game.turn_index,
            "draft": list(game.listener_draft),
        }
        return Change(game.pk, game.version, {LISTENER: draft_view}, deadline=game.deadline)

    return _run(op)


def submit_selection(
    game_id: int, worker_id: int | None, selection: object = None
) -> Change | Refused:
    """The listener submits; ``selection`` (image ids) if given, else the stored draft."""
    now = clock.now()

    def op():
        game, expired, refusal = _acting(game_id, worker_id, LISTENER, Game.Phase.LISTENER, now)
        if refusal:
            if expired:
                return Refused(_change(game, now), refusal)
            raise refusal
        if selection is None:
            chosen = list(game.listener_draft)
        else:
            if not isinstance(selection, list) or len(selection) > len(game.config.listener_order):
                raise PlayError("bad_message", "the selection must be a list of image ids")
            chosen = [_check_tangram(game, name) for name in selection]
            if len(set(chosen)) != len(chosen):
                raise PlayError("bad_message", "the selection names an image twice")
        _complete_turn(game, _current_turn(game), chosen, now, role=LISTENER)
        return _change(game, now)

    return _run(op)


def expire_due(game_id: int) -> Change | None:
    """Apply the current phase's timeout if it is due (idempotent); None when nothing was due."""
    now = clock.now()
    with transaction.atomic():
        try:
            game = _lock(game_id)
        except PlayError:
            return None
        if not _expire_locked(game, now):
            return None
        return _change(game, now)


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


def record_model_action(
    game_id: int,
    turn_index: int,
    action: str,
    probability: float | None,
    reason: str = "",
    prompt_format: str = "",
) -> Change | None:
    """A model listener's answer, with the prompt format it was produced under. Late,
    duplicate or misplaced answers are ignored (logged)."""
    now = clock.now()
    with transaction.atomic():
        try:
            game = _lock(game_id)
        except PlayError:
            logger.warning("model answer for unknown game %s ignored", game_id)
            return None
        expired = _expire_locked(game, now)
        if (
            game.status != Game.Status.PLAYING
            or game.phase != Game.Phase.LISTENER
            or game.turn_index != turn_index
            or not model_listens(game)
        ):
            logger.info(
                "model answer for game %s turn %s ignored: the turn is over", game_id, turn_index
            )
            return _change(game, now) if expired else None
        turn = _current_turn(game)
        context_size = len(game.config.listener_order)
        try:
            parsed = parse_action(action if isinstance(action, str) else "", context_size)
            letters = apply_action(
                {letter_map(game.config.listener_order)[t] for t in turn.selection_before}, parsed
            )
            by_letter = {v: k for k, v in letter_map(game.config.listener_order).items()}
            after = [by_letter[letter] for letter in letters]
            reason_text = str(reason or "")[:40]
        except ActionError as error:
            logger.warning(
                "game %s turn %s: invalid model action %r (%s); recorded as empty",
                game_id,
                turn_index,
                action,
                error,
            )
            _event(
                game,
                GameEvent.Kind.REFUSED,
                MODEL,
                now,
                action=str(action)[:200],
                error=str(error)[:200],
            )
            after, reason_text, probability = list(turn.selection_before), MODEL_INVALID, None
        if probability is not None:
            try:
                probability = float(probability)
            except (TypeError, ValueError):
                probability = None
            if probability is not None and (math.isnan(probability) or not 0 <= probability <= 1):
                probability = None
        _complete_turn(
            game,
            turn,
            after,
            now,
            role=MODEL,
            reason=reason_text,
            probability=probability,
            prompt_format=str(prompt_format or "")[:40],
        )
        return _change(game, now)


def record_event(game_id: int, kind: str, role: str, **payload) -> None:
    """Store a connection event or a refused message (nothing happens if there is no game)."""
    store.record_event(game_id, kind, role, payload, clock.now())
