"""What each player of a live game sees: the roles, and the view the server sends each of them.

A view is built from the locked game row and its turns; it holds only what that player may know
(the listener's view never names the targets). Building a view writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from games.actions import letter_map
from games.live import store
from games.live.earnings import Earnings, correct_clicks
from games.models import Game, GameEarning, Turn

SPEAKER = "speaker"
LISTENER = "listener"
MODEL = "model"

ImageUrl = Callable[[str], str]


@lru_cache(maxsize=8192)
def _default_image_url(name: str) -> str:
    """A tangram's image URL (fixed for the life of the process, so reversed once per name)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("games:tangram_image", args=[name])
    except NoReverseMatch:
        return f"/tangrams/{name}.png"


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


def human_roles(game: Game) -> list[str]:
    return [SPEAKER] if model_listens(game) else [SPEAKER, LISTENER]


def human_players(game: Game) -> list[int | None]:
    """The workers who play the human roles, speaker first."""
    return [game.speaker_id] if model_listens(game) else [game.speaker_id, game.listener_id]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def build_view(
    game: Game,
    role: str,
    turns: list[Turn],
    now: datetime,
    image_url: ImageUrl = _default_image_url,
    earnings: Earnings | None = None,
) -> dict:
    """What one player may see. The listener's view never names the targets.

    ``earnings`` are the rows just written when the game ended; without them, an ended game's
    view reads the player's earnings from the database.
    """
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
    selection = list(answered[-1].selection_after) if answered else []
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
        rows = (earnings or {}).get(worker_id)
        if rows is None:
            rows = list(GameEarning.objects.filter(game=game, worker_id=worker_id))
        view["earned"] = {row.kind: str(row.amount) for row in rows}
        view["earned_total"] = str(sum((row.amount for row in rows), Decimal("0.00")))
        correct, total = correct_clicks(turns, targets)
        view["clicks"] = {"correct": correct, "total": total}
    return view


def views_for(
    game: Game,
    roles: Iterable[str],
    now: datetime,
    turns: list[Turn] | None = None,
    earnings: Earnings | None = None,
) -> dict[str, dict]:
    """The views of ``roles``, built from one read of the turns."""
    if turns is None:
        turns = store.turns(game.pk)
    return {role: build_view(game, role, turns, now, earnings=earnings) for role in roles}


def draft_view(game: Game) -> dict:
    """The listener's draft after a toggle: only their own screen changes, so a small message
    with no history to rebuild."""
    return {
        "type": "draft",
        "game": game.pk,
        "version": game.version,
        "status": game.status,
        "phase": game.phase,
        "turn": game.turn_index,
        "draft": list(game.listener_draft),
    }
