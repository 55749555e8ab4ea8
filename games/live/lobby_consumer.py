"""The lobby page's websocket: a waiting worker learns when they are paired.

The socket admits whom the lobby page admits (``games.live.admission``); a refusal is a message
saying why, then a close code. Pairing runs one loop per round at a time, in the process's
pairing thread, so a burst of arrivals queues behind the round's row lock without delaying moves
or other arrivals (``games.live.consumers``). Too many arrivals at once are asked to come back
(``config.arrivals``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref

from channels.layers import get_channel_layer
from django.urls import reverse

from games.live import admission, lobby, notify, timers
from games.live.consumers import (
    PlayConsumer,
    TokenBucket,
    _session_worker_id,
    background,
    expire_and_publish,
    lobby_db,
    pairing_db,
)

logger = logging.getLogger("games.live")

_pairing_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_last_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# A heartbeat asks for a pairing run only if this process ran none for the round this long: an
# arrival already runs one, and a run pairs everybody waiting, so heartbeats need only catch a
# worker who was absent at the last run (a page that lost its socket for a while).
HEARTBEAT_PAIRING_SECONDS = 5.0
PRESENCE_WRITE_SECONDS = 9.0


def request_pairing(round_id: int, *, unless_ran_within: float = 0.0) -> None:
    """Pair the round's waiting workers soon. One pairing run per round at a time in this
    process; requests that come during a run ask for one more run after it, so a burst of
    arrivals costs a few runs, not one each (a run pairs everybody waiting). With
    ``unless_ran_within``, nothing happens if a run of this round started or ended within that
    many seconds."""
    loop = asyncio.get_running_loop()
    runs = _pairing_runs.setdefault(loop, {})
    last = _last_runs.setdefault(loop, {})
    if unless_ran_within and (
        round_id in runs or loop.time() - last.get(round_id, -1e9) < unless_ran_within
    ):
        return
    if round_id in runs:
        runs[round_id] = True
        return
    runs[round_id] = True
    task = asyncio.ensure_future(_pairing_loop(round_id, runs, last))
    task.add_done_callback(_log_failure)


async def _pairing_loop(round_id: int, runs: dict[int, bool], last: dict[int, float]) -> None:
    loop = asyncio.get_running_loop()
    try:
        while runs.get(round_id):
            runs[round_id] = False
            last[round_id] = loop.time()
            pairings = await pairing_db(lobby.try_pair)(round_id)
            for pairing in pairings:
                await announce(pairing)
    finally:
        last[round_id] = loop.time()
        runs.pop(round_id, None)


async def announce(pairing: lobby.Pairing) -> None:
    layer = get_channel_layer()
    for worker_id in pairing.worker_ids:
        await layer.group_send(
            notify.worker_group(worker_id),
            {"type": "lobby.paired", "game": pairing.game_id, "partner": pairing.partner},
        )
    timers.schedule(pairing.game_id, pairing.deadline, expire_and_publish)
    if notify.deadline_tasks_enabled():
        await background(notify.schedule_deadline_task)(pairing.game_id, pairing.deadline)


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("pairing failed", exc_info=task.exception())


class LobbyConsumer(PlayConsumer):
    """A waiting worker's socket, ``/ws/play/lobby/<round_id>/``: says when they are paired.

    Messages to the page: ``waiting`` (for another player), ``paired`` (game, url, partner:
    ``human`` or ``model``), ``refused`` (reason, message; then the socket closes with 4403,
    4409 for a closed lobby, or 4429 for too many sockets). Without a worker it closes with 4403,
    and with 4404 for a worker neither waiting nor playing (the page reloads).
    """

    accepted = False

    async def accept(self, subprotocol=None, headers=None) -> None:
        if not self.accepted:
            self.accepted = True
            await super().accept(subprotocol, headers)

    async def connect(self) -> None:
        """Accept at once, then look the worker up: the lookups wait in the lobby's thread pool,
        behind other arrivals in a burst, and a handshake left waiting would be cut by the server
        (Daphne's handshake timeout) where an accepted socket just waits. Refusals are messages
        and close codes the page reads; ``config.arrivals`` bounds the arrivals waiting here."""
        self.round_id = int(self.scope["url_route"]["kwargs"]["round_id"])
        self.group = None
        self.bucket = TokenBucket(size=5, rate=1.0)
        self.present_at = asyncio.get_running_loop().time()
        await self.accept()
        self.worker_id = await lobby_db(_session_worker_id)(self.scope)
        if self.worker_id is None:
            await self.close(code=4403)
            return
        if not self.claim_socket(self.worker_id):
            await self.refuse_too_many("lobby")
            return
        # Listen before looking: a pairing after the look is heard, one before it is seen.
        self.group = notify.worker_group(self.worker_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        answer, here = await lobby_db(_arrival)(self.round_id, self.worker_id)
        if answer is None or (answer.admitted and here.game_id is None and not here.waiting):
            await self.leave_group()
            self.release_socket()
            await self.close(code=4404)
            return
        if not answer.admitted:
            await self.leave_group()
            await self.refuse(str(answer.refusal), answer.message, answer.close_code)
            return
        await self.accept()
        if here.game_id is not None:
            await self.send_paired(here.game_id, here.partner)
            return
        await self.send(text_data=json.dumps({"type": "waiting", "for": lobby.HUMAN_PARTNER}))
        request_pairing(self.round_id)

    async def leave_group(self) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def disconnect(self, code) -> None:
        await self.leave_group()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """A heartbeat: mark the worker present, at most every ``PRESENCE_WRITE_SECONDS`` (the
        page beats every 5 s; presence lasts ``lobby.PRESENCE``, so every other beat is enough
        and a full lobby costs half the writes)."""
        if not self.bucket.take():
            return
        now = asyncio.get_running_loop().time()
        if now - self.present_at < PRESENCE_WRITE_SECONDS:
            return
        self.present_at = now
        here = await lobby_db(lobby.presence)(self.round_id, self.worker_id)
        if here.game_id is not None:
            await self.send_paired(here.game_id, here.partner)
        elif here.waiting:
            request_pairing(self.round_id, unless_ran_within=HEARTBEAT_PAIRING_SECONDS)
        else:
            await self.close(code=4404)

    async def lobby_paired(self, event: dict) -> None:
        await self.send_paired(event["game"], event.get("partner", lobby.HUMAN_PARTNER))

    async def send_paired(self, game_id: int, partner: str) -> None:
        url = reverse("games:play_game", args=[game_id])
        await self.send(
            text_data=json.dumps(
                {"type": "paired", "game": game_id, "url": url, "partner": partner}
            )
        )


def _arrival(round_id: int, worker_id: int):
    """(admission, presence) of a lobby socket; presence only for the admitted.

    A worker waiting in this round was admitted by the lobby page that made their place, and
    closing the lobby ends every wait: marking them present (one UPDATE) answers both questions,
    so the common arrival costs no admission queries."""
    if lobby.heartbeat(round_id, worker_id):
        return admission.Admission(None), lobby.Presence(waiting=True)
    answer = admission.admit_ids(round_id, worker_id)
    if answer is None or not answer.admitted:
        return answer, None
    return answer, lobby.presence(round_id, worker_id)
