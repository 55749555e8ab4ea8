"""Playing a simulated game through the game engine, exactly as people do.

The scripted speaker submits utterances with ``engine.submit_utterance``; a model listener
answers through the ``gpu-live`` queue (``listener_act``) as in live play, and a scripted listener
(tests, human-listener systems) toggles and submits through the engine as a person would. An
idle speaker lets its turn time out: the engine's own timeout runs on a clock that is ahead by
the deadline for this game's thread only (``simulated_now``), so nothing else is affected.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from games.live import engine, notify
from games.models import Game, Turn

from .speaker import Population, SpeakerView, Utterance, speak

_ahead = threading.local()


def simulated_now():
    """Real time, plus this thread's offset while it lets a turn time out."""
    return timezone.now() + getattr(_ahead, "offset", timedelta(0))


class SimulationError(RuntimeError):
    """The engine refused a scripted move, or a listener never answered."""


class SimulationStopped(SimulationError):
    """The simulation was stopped: the game stays in play for the next run to resume."""


ScriptedListener = Callable[[SpeakerView, Utterance, random.Random], set[str]]


def oracle_listener(view: SpeakerView, said: Utterance, rng: random.Random) -> set[str]:
    """Does exactly what the speaker meant."""
    return (set(view.selection) - set(said.deselect)) | set(said.asked)


def wrong_listener(view: SpeakerView, said: Utterance, rng: random.Random) -> set[str]:
    """Always adds one non-target (when one is left unselected)."""
    choices = sorted(set(view.listener_order) - view.targets - view.selection)
    return set(view.selection) | ({rng.choice(choices)} if choices else set())


LISTENERS: dict[str, ScriptedListener] = {"oracle": oracle_listener, "wrong": wrong_listener}


@dataclass
class PlayedGame:
    game_id: int
    satisfied: list[bool | None] = field(default_factory=list)


def speaker_view(game: Game, asked: tuple[str, ...]) -> SpeakerView:
    turns = list(Turn.objects.filter(game=game).order_by("index"))
    current = turns[-1]
    before = set(current.selection_before)
    previous = turns[-2] if len(turns) > 1 else None
    earlier = set(previous.selection_before) if previous else set()
    return SpeakerView(
        listener_order=tuple(game.config.listener_order),
        targets=frozenset(game.config.targets),
        selection=frozenset(before),
        turn_index=current.index,
        deselected=frozenset(earlier - before),
        selected=frozenset(before - earlier),
        asked=asked,
    )


def play_game(
    game_id: int,
    population: Population,
    seed: str,
    *,
    listener: ScriptedListener | None = None,
    answer_timeout: float = 120.0,
    stop: Callable[[], bool] = lambda: False,
) -> PlayedGame:
    """Play a started game to its end; returns the speaker's satisfaction after each turn.
    When ``stop()`` turns true the game is left in play, at its current turn, and
    ``SimulationStopped`` is raised."""
    rng = random.Random(seed)
    played = PlayedGame(game_id)
    asked: tuple[str, ...] = ()
    while True:
        if stop():
            raise SimulationStopped(f"game {game_id} left in play")
        game = Game.objects.select_related("config", "study").get(pk=game_id)
        if game.status != Game.Status.PLAYING:
            break
        if game.phase == Game.Phase.LISTENER:
            _resume_listener(game, listener, rng, asked, answer_timeout)
            continue
        view = speaker_view(game, asked)
        said = speak(view, population, rng)
        if view.turn_index > 0 and len(played.satisfied) < view.turn_index:
            played.satisfied.append(said.satisfied)
        if said.text is None:
            _time_out(game)
            continue
        change = engine.submit_utterance(game_id, game.speaker_id, said.text)
        if isinstance(change, engine.Refused):
            if Game.objects.filter(pk=game_id, status=Game.Status.PLAYING).exists():
                raise SimulationError(f"game {game_id}: the engine refused the utterance")
            break
        asked = said.asked
        if listener is None:
            notify.send_followups(change)
            _wait_for_answer(game_id, view.turn_index, answer_timeout)
        else:
            chosen = listener(view, said, rng)
            order = list(game.config.listener_order)
            result = engine.submit_selection(
                game_id, game.listener_id, [t for t in order if t in chosen]
            )
            if isinstance(result, engine.Refused):
                raise SimulationError(f"game {game_id}: the engine refused the selection")
    return played


def _resume_listener(
    game: Game,
    listener: ScriptedListener | None,
    rng: random.Random,
    asked: tuple[str, ...],
    timeout: float,
) -> None:
    """A game left waiting for its listener (the simulation was killed after the speaker's
    utterance): ask the model again (``listener_act`` is idempotent and seeded, so a task still
    in the broker does no harm) or let the scripted listener answer."""
    turn = Turn.objects.filter(game=game).order_by("-index").first()
    if turn is None:
        raise SimulationError(f"game {game.pk} waits for a listener but has no turn")
    if listener is None:
        notify.request_model_turn(game.pk, turn.index)
        _wait_for_answer(game.pk, turn.index, timeout)
        return
    said = Utterance(text=turn.utterance, asked=asked, satisfied=None)
    chosen = listener(speaker_view(game, asked), said, rng)
    order = list(game.config.listener_order)
    result = engine.submit_selection(game.pk, game.listener_id, [t for t in order if t in chosen])
    if isinstance(result, engine.Refused):
        raise SimulationError(f"game {game.pk}: the engine refused the selection")


def _time_out(game: Game) -> None:
    """Let the current phase's deadline pass for this game (the engine applies the timeout)."""
    if game.deadline is None:
        raise SimulationError(f"game {game.pk} has no deadline to let pass")
    _ahead.offset = game.deadline - timezone.now() + engine.GRACE + timedelta(seconds=1)
    try:
        engine.expire_due(game.pk)
    finally:
        _ahead.offset = timedelta(0)


def _wait_for_answer(game_id: int, turn_index: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        answered = Turn.objects.filter(
            game_id=game_id, index=turn_index, selection_after__isnull=False
        ).exists()
        if answered or not Game.objects.filter(pk=game_id, status=Game.Status.PLAYING).exists():
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    engine.expire_due(game_id)
    answers = Turn.objects.filter(game_id=game_id, index=turn_index, selection_after__isnull=False)
    if not answers.exists():
        raise SimulationError(
            f"game {game_id} turn {turn_index}: no listener answered within {timeout:.0f} s "
            "(is a gpu-live worker running?)"
        )
