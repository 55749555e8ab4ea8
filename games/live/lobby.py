"""The lobby of a round: arrival, presence, pairing, waiting pay, and the researchers' switch.

Who may wait here is ``games.live.admission``'s question; this module takes the admitted.

Who plays whom, deterministically, in arrival order (``try_pair``):

1. A worker who arrives while another person is waiting for a human partner is paired with that
   person in a human-human (HH) game, unless they asked for a model system: waiting people are
   paired with each other first.
2. Otherwise the worker gets the next free slot of the round (``configs.FreeSlots``): the
   round's configured mix of systems, in the seeded order of its blocks. A model slot starts a
   game with the model at once ("your partner is a model"); an HH slot makes them wait for the
   next person ("waiting for another player").
3. A worker of the demo's local entry names the system they want (``LobbyEntry.system``): HH
   waits for (or joins) another person, a model system starts a game with it at once.

Pairing runs under a lock on the round row, so two web processes never pair the same worker
twice. Only workers whose lobby socket was heard in the last ``PRESENCE`` seconds (the page beats
every few seconds) are paired, so a closed tab never starts a game. A worker counts as present
from the moment their socket listens, not when the page is served: an overloaded lobby may tell
the socket to come back in a few seconds (``config.arrivals``), and a worker paired meanwhile
would learn of the game only then, perhaps after their first turn's time limit.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q

from config.errors import ApplicationError
from games.live import clock, engine
from games.live.configs import FreeSlots
from games.models import Game, GameEarning, LobbyEntry, Round, RoundSlot, Study, System, Worker

logger = logging.getLogger("games.live")

PRESENCE = timedelta(seconds=20)
ACTIVE = (Game.Status.WAITING, Game.Status.PLAYING)


class LobbyError(ApplicationError):
    """The worker cannot wait in this lobby now (message says why)."""


HUMAN_PARTNER = "human"
MODEL_PARTNER = "model"


@dataclass(frozen=True)
class Pairing:
    game_id: int
    worker_ids: tuple[int, ...]
    deadline: datetime | None = None
    partner: str = HUMAN_PARTNER


def active_game(worker: Worker | int) -> Game | None:
    """The game a worker is in now (one game at a time)."""
    worker_id = worker if isinstance(worker, int) else worker.pk
    return (
        Game.objects.filter(Q(speaker_id=worker_id) | Q(listener_id=worker_id), status__in=ACTIVE)
        .select_related("system")
        .order_by("-created_at")
        .first()
    )


def arrive(
    round_: Round, worker: Worker, system: System | None = None, *, present: bool = True
) -> LobbyEntry:
    """Put the worker in the round's lobby (or keep their place if already waiting there).

    ``system``: the system the worker asked to play (the local entry); None leaves it to the
    round's mix. A waiting place in another round's lobby is closed: a worker waits in one lobby
    at a time. ``present``: whether the worker may be paired from now on; the lobby page passes
    False, and the worker becomes present when the page's socket listens (``heartbeat``).
    """
    if system is not None and system.round_id != round_.pk:
        raise LobbyError(f"system {system.name!r} is not a system of {round_}")
    now = clock.now()
    try:  # the common case, a first arrival: one INSERT (one wait per worker is a constraint)
        with transaction.atomic():
            return _new_entry(round_, worker, system, now, present)
    except IntegrityError:  # the worker waits already (a reload, another round's lobby)
        pass
    with transaction.atomic():
        existing = (
            LobbyEntry.objects.select_for_update()
            .filter(worker=worker, status=LobbyEntry.Status.WAITING)
            .first()
        )
        if existing is not None and existing.round_id == round_.pk:
            existing.system = system
            if present:
                existing.last_seen_at = now
            existing.save(update_fields=["last_seen_at", "system"])
            return existing
        if existing is not None:
            _finish_wait(existing, LobbyEntry.Status.CLOSED, now, pay=False)
        try:
            with transaction.atomic():
                return _new_entry(round_, worker, system, now, present)
        except IntegrityError:  # a parallel request of the same worker won
            return LobbyEntry.objects.get(worker=worker, status=LobbyEntry.Status.WAITING)


def _new_entry(
    round_: Round, worker: Worker, system: System | None, now: datetime, present: bool
) -> LobbyEntry:
    """A waiting place, pairable at once only if ``present``."""
    return LobbyEntry.objects.create(
        round=round_,
        worker=worker,
        system=system,
        arrived_at=now,
        last_seen_at=now if present else None,
    )


def is_present(entry: LobbyEntry, now: datetime) -> bool:
    """Whether the entry's worker was heard on the lobby socket within ``PRESENCE``."""
    return entry.last_seen_at is not None and entry.last_seen_at >= now - PRESENCE


def heartbeat(round_id: int, worker_id: int) -> bool:
    """Mark the worker present (one UPDATE, the lobby's most frequent query); False if they are
    not waiting in this round."""
    return bool(
        LobbyEntry.objects.filter(
            round_id=round_id, worker_id=worker_id, status=LobbyEntry.Status.WAITING
        ).update(last_seen_at=clock.now())
    )


@dataclass(frozen=True)
class Presence:
    waiting: bool
    game_id: int | None = None
    partner: str = HUMAN_PARTNER


def presence(round_id: int, worker_id: int) -> Presence:
    """Whether the worker is still waiting in this round, else the game they are in (and with
    whom): marks the worker present.

    Presence is read before the game: a partner may pair this worker between the two reads.
    """
    if heartbeat(round_id, worker_id):
        return Presence(waiting=True)
    game = active_game(worker_id)
    if game is None:
        return Presence(waiting=False)
    return Presence(False, game.pk, partner_of(game))


def partner_of(game: Game) -> str:
    return HUMAN_PARTNER if game.system.is_human else MODEL_PARTNER


def waiting_pay(study: Study, seconds: float) -> Decimal:
    amount = study.waiting_pay_per_minute * Decimal(str(seconds)) / Decimal(60)
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _end_wait(entry: LobbyEntry, status: str, now, game=None) -> None:
    """Set the fields that end a wait (the caller saves them)."""
    entry.status = status
    entry.ended_at = now
    entry.waited_seconds = max(0.0, (now - entry.arrived_at).total_seconds())
    entry.game = game


def _waiting_earning(entry: LobbyEntry) -> GameEarning | None:
    """The (unsaved) waiting pay of an ended wait; None when it comes to nothing."""
    seconds = entry.waited_seconds or 0.0
    amount = waiting_pay(entry.round.study, seconds)
    if amount <= 0:
        return None
    return GameEarning(
        worker_id=entry.worker_id,
        lobby_entry=entry,
        kind=GameEarning.Kind.WAITING,
        amount=amount,
        detail=f"{seconds:.0f} s in the lobby",
    )


def _finish_wait(entry: LobbyEntry, status: str, now, *, pay: bool, game=None) -> None:
    _end_wait(entry, status, now, game)
    entry.save(update_fields=["status", "ended_at", "waited_seconds", "game"])
    earning = _waiting_earning(entry) if pay else None
    if earning is not None:
        GameEarning.objects.get_or_create(
            worker_id=earning.worker_id,
            lobby_entry=entry,
            kind=earning.kind,
            defaults={"amount": earning.amount, "detail": earning.detail},
        )


def _finish_paired(entries: list[LobbyEntry]) -> None:
    """Store the ended, paid waits of a pairing run: one UPDATE and one INSERT for the whole
    run (an earning already stored for a wait is kept, as ``get_or_create`` would)."""
    if not entries:
        return
    LobbyEntry.objects.bulk_update(entries, ["status", "ended_at", "waited_seconds", "game"])
    earnings = [e for e in map(_waiting_earning, entries) if e is not None]
    GameEarning.objects.bulk_create(earnings, ignore_conflicts=True)


def may_leave_at(entry: LobbyEntry):
    return entry.arrived_at + timedelta(seconds=entry.round.study.lobby_wait_seconds)


def leave(round_id: int, worker_id: int) -> LobbyEntry:
    """Leave the lobby: with waiting pay after the study's limit, without before it."""
    now = clock.now()
    with transaction.atomic():
        entry = (
            LobbyEntry.objects.select_for_update()
            .select_related("round__study")
            .filter(round_id=round_id, worker_id=worker_id, status=LobbyEntry.Status.WAITING)
            .first()
        )
        if entry is None:
            raise LobbyError("you are not waiting in this lobby")
        paid = now >= may_leave_at(entry)
        _finish_wait(
            entry, LobbyEntry.Status.LEFT if paid else LobbyEntry.Status.CLOSED, now, pay=paid
        )
        return entry


def set_decode_when_lobby_closes(system: System, enabled: bool) -> None:
    """Whether closing the lobby of the system's round queues the decoding of its turns (the
    round board does it, ``evaluation.board.services.set_round_lobby``)."""
    System.objects.filter(pk=system.pk).update(decode_when_lobby_closes=enabled)
    system.decode_when_lobby_closes = enabled


def set_lobby_open(round_: Round, is_open: bool) -> list[LobbyEntry]:
    """Open or close a round's lobby (the researchers' switch); returns the waits it ended.

    Closing ends the waits of the workers still waiting there, paid for the time they waited
    (nobody can be paired in a closed lobby); their pages notice on their next heartbeat and show
    that the lobby is closed. Games in play go on.
    """
    now = clock.now()
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_.pk)
        locked.lobby_open = is_open
        locked.save(update_fields=["lobby_open"])
        round_.lobby_open = is_open
        if is_open:
            return []
        ended = list(
            LobbyEntry.objects.select_for_update()
            .select_related("round__study")
            .filter(round=locked, status=LobbyEntry.Status.WAITING)
            .order_by("arrived_at", "id")
        )
        for entry in ended:
            _finish_wait(entry, LobbyEntry.Status.LEFT, now, pay=True)
    logger.info("round %s: lobby %s", round_.pk, "opened" if is_open else "closed")
    return ended


def experience(worker_id: int) -> int:
    return Game.objects.filter(
        Q(speaker_id=worker_id) | Q(listener_id=worker_id), status=Game.Status.ENDED
    ).count()


def assign_roles(study: Study, first: int, second: int, rng: random.Random) -> tuple[int, int]:
    """(speaker, listener) of a human-human game by the study's rule."""
    if study.role_rule == Study.RoleRule.EXPERIENCED_SPEAKS:
        a, b = experience(first), experience(second)
        if a != b:
            return (first, second) if a > b else (second, first)
    return (first, second) if rng.random() < 0.5 else (second, first)


def _create_game(slot: RoundSlot, speaker_id: int, listener_id: int | None, now) -> Game:
    round_ = slot.round
    game = Game.objects.create(
        study=round_.study,
        round=round_,
        system=slot.system,
        config=slot.config,
        slot=slot,
        external_id=f"live-{round_.index}-{uuid.uuid4().hex[:12]}",
        speaker_id=speaker_id,
        listener_id=listener_id,
    )
    engine.start_game(game, now)
    return game


def try_pair(round_id: int, rng: random.Random | None = None) -> list[Pairing]:
    """Pair the round's present, waiting workers by the rules of the module docstring and start
    their games.

    Runs under the round's row lock, so pairings of one round are serial across processes; a
    run pairs everybody waiting, so callers coalesce their requests (one run at a time per
    process) rather than waiting in line for the lock one arrival at a time.
    """
    rng = rng or random.Random()
    now = clock.now()
    pairings: list[Pairing] = []
    with transaction.atomic():
        round_ = (
            Round.objects.select_for_update().select_related("study").filter(pk=round_id).first()
        )
        if round_ is None or not round_.lobby_open:
            return []
        waiting = _pairable(round_, now)
        slots = FreeSlots(round_)
        people: list[tuple[LobbyEntry, System]] = []  # waiting for another person, in order
        ended: list[LobbyEntry] = []
        for entry in waiting:
            if people and (entry.system is None or entry.system.is_human):
                partner, system = people.pop(0)
                slot = slots.first(system)
                speaker, listener = assign_roles(
                    round_.study, partner.worker_id, entry.worker_id, rng
                )
                taken = [partner, entry]
            else:
                slot = slots.first(entry.system)
                if slot.system.is_human:
                    people.append((entry, slot.system))
                    continue
                speaker, listener, taken = entry.worker_id, None, [entry]
            slots.take(slot)
            slot.round = round_
            game = _create_game(slot, speaker, listener, now)
            for paired in taken:
                _end_wait(paired, LobbyEntry.Status.PAIRED, now, game)
            ended.extend(taken)
            partner_kind = HUMAN_PARTNER if slot.system.is_human else MODEL_PARTNER
            pairings.append(
                Pairing(game.pk, tuple(e.worker_id for e in taken), game.deadline, partner_kind)
            )
            logger.info("round %s: game %s started (%s)", round_id, game.pk, slot.system.name)
        _finish_paired(ended)
    return pairings


def _pairable(round_: Round, now) -> list[LobbyEntry]:
    """The round's present waiting entries in arrival order; entries of workers who are in a
    game already are closed (one game at a time)."""
    waiting = list(
        LobbyEntry.objects.select_related("round__study", "system")
        .filter(round=round_, status=LobbyEntry.Status.WAITING, last_seen_at__gte=now - PRESENCE)
        .order_by("arrived_at", "id")
    )
    worker_ids = [e.worker_id for e in waiting]
    busy = (
        Game.objects.filter(status__in=ACTIVE)
        .filter(Q(speaker_id__in=worker_ids) | Q(listener_id__in=worker_ids))
        .values_list("speaker_id", "listener_id")
        .distinct()
    )
    busy_ids = {worker for pair in busy for worker in pair if worker is not None}
    for entry in [e for e in waiting if e.worker_id in busy_ids]:
        _finish_wait(entry, LobbyEntry.Status.CLOSED, now, pay=False)
    return [e for e in waiting if e.worker_id not in busy_ids]
