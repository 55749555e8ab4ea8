"""Websocket consumers of live play: what every play socket shares, and the game page's socket
(the lobby page's is ``games.live.lobby_consumer``).

A socket belongs to the worker of the browser session (never to an id the client names). Every
message is checked by the engine under the game's row lock; refusals go back to the sender only,
are logged and stored as events (at a bounded rate per socket), and change nothing. Each
connection has a token bucket against flooding, and a player holds a bounded number of sockets
(``games.live.sockets``). The lobby socket admits whom the lobby page admits
(``games.live.admission``); a refusal is a message saying why, then a close code.

Database work runs in thread pools of this process: one for moves, one for game sockets joining,
one for the lobby's arrivals and heartbeats, one thread for pairing runs (which wait on the
round's row lock), so a burst of arrivals or joins never delays a move, and a pairing run never
delays an arrival.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from config import bounded_json
from games.live import engine, notify, sockets, timers
from games.live.engine import Change, PlayError, Refused
from games.models import Game, GameEvent
from games.workers import SESSION_KEY

logger = logging.getLogger("games.live")

MAX_MESSAGE_CHARS = 8192
BUCKET_SIZE = 20
BUCKET_RATE = 10.0
FLOOD_CLOSE_AFTER = 200
# Refused messages stored as events (and logged) per socket: a burst, then one per 5 seconds;
# the next stored refusal counts the ones left out.
REFUSED_EVENTS_BURST = 10
REFUSED_EVENTS_RATE = 0.2
MODEL_POLL_SECONDS = 0.3

_move_pool = ThreadPoolExecutor(
    max_workers=getattr(settings, "PLAY_MOVE_THREADS", 8), thread_name_prefix="play-move"
)
_lobby_pool = ThreadPoolExecutor(
    max_workers=getattr(settings, "PLAY_LOBBY_THREADS", 2), thread_name_prefix="play-lobby"
)
# Pairing runs hold the round's row lock and may wait for it: a thread of their own, so arrivals
# and heartbeats (the lobby pool) never queue behind a pairing run.
_pairing_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="play-pairing")
# Game sockets joining (their session and the join itself): a pairing run sends everybody it
# paired to their game at once, and those joins must not queue in front of the moves.
_join_pool = ThreadPoolExecutor(
    max_workers=getattr(settings, "PLAY_JOIN_THREADS", 2), thread_name_prefix="play-join"
)


def monotonic() -> float:
    """The flood limiter's clock (tests replace it)."""
    return time.monotonic()


def db(fn):
    """Run ORM code of a move in the moves' thread pool (each thread keeps its connection)."""
    return DatabaseSyncToAsync(fn, thread_sensitive=False, executor=_move_pool)


def lobby_db(fn):
    """Run ORM code of the lobby in its own pool: pairing may wait on the round's lock."""
    return DatabaseSyncToAsync(fn, thread_sensitive=False, executor=_lobby_pool)


def pairing_db(fn):
    """Run a pairing run in the pairing thread (one per process; runs are serial anyway)."""
    return DatabaseSyncToAsync(fn, thread_sensitive=False, executor=_pairing_pool)


def join_db(fn):
    """Run the ORM code of a game socket's handshake in the joins' pool (not the moves')."""
    return DatabaseSyncToAsync(fn, thread_sensitive=False, executor=_join_pool)


def background(fn):
    return sync_to_async(fn, thread_sensitive=False)


class TokenBucket:
    def __init__(self, size: int = BUCKET_SIZE, rate: float = BUCKET_RATE) -> None:
        self.size, self.rate = size, rate
        self.tokens = float(size)
        self.stamp = monotonic()

    def take(self) -> bool:
        now = monotonic()
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _session_worker_id(scope) -> int | None:
    session = scope.get("session")
    if session is None:
        return None
    value = session.get(SESSION_KEY)
    return value if isinstance(value, int) else None


async def expire_and_publish(game_id: int) -> None:
    """Timer callback: apply a due timeout and tell the players."""
    change = await db(engine.expire_due)(game_id)
    if change is None:
        deadline = await db(engine.pending_deadline)(game_id)
        if deadline is not None:
            timers.schedule(game_id, deadline, expire_and_publish)
        return
    await publish(change)


async def publish(change: Change) -> None:
    """Tell the players of a change, and keep this process's timer on its new deadline."""
    await get_channel_layer().group_send(
        notify.game_group(change.game_id), notify.update_message(change)
    )
    timers.schedule(change.game_id, change.deadline, expire_and_publish)
    if notify.has_followups(change):
        await background(notify.send_followups)(change)


class PlayConsumer(AsyncWebsocketConsumer):
    """A websocket consumer without channels' per-message trip to the sync thread.

    Channels runs ``close_old_connections`` in its single sync thread before every message a
    consumer handles. These consumers never touch the database from that thread: their ORM code
    runs in the pools above, whose calls close stale connections themselves. The trip would cost
    two thread hand-offs per message and change nothing.
    """

    claimed_by: int | None  # the player this socket counts against (set by ``claim_socket``)

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict) -> None:
        self.release_socket()
        await self.disconnect(message["code"])
        raise StopConsumer()

    def claim_socket(self, worker_id: int) -> bool:
        """Count this socket against the player's limit (False: over it, nothing counted)."""
        if not sockets.claim(worker_id, self.channel_name):
            return False
        self.claimed_by = worker_id
        return True

    def release_socket(self) -> None:
        worker_id = getattr(self, "claimed_by", None)
        if worker_id is not None:
            sockets.release(worker_id, self.channel_name)
            self.claimed_by = None

    async def refuse(self, reason: str, message: str, code: int) -> None:
        """Accept only to say why, then close with ``code`` (a browser never sees the close code
        of a socket refused at the handshake)."""
        self.release_socket()
        await self.accept()
        await self.send(
            text_data=json.dumps({"type": "refused", "reason": reason, "message": message})
        )
        await self.close(code=code)

    async def refuse_too_many(self, page: str) -> None:
        await self.refuse(
            "too_many_sockets",
            f"The {page} is open in more than {sockets.limit()} pages or tabs; close the others.",
            sockets.TOO_MANY,
        )


class GameConsumer(PlayConsumer):
    """One player's socket of one game: ``/ws/play/game/<game_id>/``."""

    async def connect(self) -> None:
        self.game_id = int(self.scope["url_route"]["kwargs"]["game_id"])
        self.role = None
        self.version = -1
        self.bucket = TokenBucket()
        self.refused = 0
        self.refusal_log = TokenBucket(size=REFUSED_EVENTS_BURST, rate=REFUSED_EVENTS_RATE)
        self.unlogged_refusals = 0
        self.closed_for_flooding = False
        self.poller: asyncio.Task | None = None
        self.group = notify.game_group(self.game_id)
        self.worker_id = await join_db(_session_worker_id)(self.scope)
        if self.worker_id is not None and not self.claim_socket(self.worker_id):
            await self.refuse_too_many("game")
            return
        # Listen first: a change made while the view is read arrives after it, never before.
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:
            view, change = await join_db(engine.join)(self.game_id, self.worker_id)
        except (PlayError, Game.DoesNotExist):
            logger.warning(
                "refused game socket: worker %s is not a player of game %s",
                self.worker_id,
                self.game_id,
            )
            self.release_socket()
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.close(code=4403)
            return
        self.role = view["role"]
        self.model_game = view.get("partner") == "model"
        await self.accept()
        if change is not None:
            await publish(change)
        elif view["status"] == Game.Status.PLAYING and view.get("deadline_ms") is not None:
            timers.schedule(self.game_id, _from_ms(view["deadline_ms"]), expire_and_publish)
        await self.send_view(view, force=True)

    async def disconnect(self, code) -> None:
        if self.poller is not None:
            self.poller.cancel()
        if self.role is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await db(engine.record_event)(self.game_id, GameEvent.Kind.DISCONNECT, self.role, code=code)

    async def send_view(self, view: dict, *, force: bool = False) -> None:
        if not force and view["version"] <= self.version:
            return
        self.version = max(self.version, view["version"])
        await self.send(text_data=json.dumps(view))
        if self.model_game and view["phase"] == Game.Phase.LISTENER and self.poller is None:
            self.poller = asyncio.ensure_future(self.poll_model_answer())

    async def poll_model_answer(self) -> None:
        """Watch the database for the model's answer: it may come from a worker that cannot reach
        this process's channel layer (the in-memory layer of the demo)."""
        try:
            while True:
                await asyncio.sleep(MODEL_POLL_SECONDS)
                version = await db(_version_of)(self.game_id)
                if version is not None and version > self.version:
                    view = await db(engine.current_view)(self.game_id, self.worker_id)
                    self.poller = None
                    await self.send_view(view)
                    return
        except asyncio.CancelledError:
            pass

    async def game_update(self, event: dict) -> None:
        view = event["views"].get(self.role)
        if view is not None:
            await self.send_view(view)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closed_for_flooding:
            return  # frames the client sent before it saw the close: sending would fail
        if not self.bucket.take():
            await self.refuse_flood()
            return
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self.send_error("too_large", "messages must be text of at most 8192 characters")
            return
        try:
            message = bounded_json.loads(text_data)
        except ValueError:
            await self.send_error("bad_json", "the message is not JSON")
            return
        if not isinstance(message, dict):
            await self.send_error("bad_message", "the message must be a JSON object")
            return
        kind = message.get("type")
        try:
            if kind == "utterance":
                result = await db(engine.submit_utterance)(
                    self.game_id, self.worker_id, message.get("text")
                )
            elif kind == "toggle":
                result = await db(engine.toggle)(
                    self.game_id, self.worker_id, message.get("tangram")
                )
            elif kind == "submit":
                result = await db(engine.submit_selection)(
                    self.game_id, self.worker_id, message.get("selection")
                )
            elif kind == "sync":
                view, change = await db(engine.resync)(self.game_id, self.worker_id)
                if change is not None:
                    await publish(change)
                await self.send_view(view, force=True)
                return
            else:
                raise PlayError("unknown_type", f"unknown message type {str(kind)[:40]!r}")
        except PlayError as error:
            await self.send_error(error.code, error.message)
            return
        if isinstance(result, Refused):
            await publish(result.change)
            await self.send_error(result.error.code, result.error.message)
            return
        await publish(result)

    async def refuse_flood(self) -> None:
        """Answer a message over the rate limit; after ``FLOOD_CLOSE_AFTER`` of them, close the
        socket with 4429 and log that as one line (the socket then ignores what still arrives)."""
        self.refused += 1
        if self.refused in (1, 50, 100):
            logger.warning(
                "game %s: flooding from the %s (worker %s): %s messages refused",
                self.game_id,
                self.role,
                self.worker_id,
                self.refused,
            )
        if self.refused >= FLOOD_CLOSE_AFTER:
            self.closed_for_flooding = True
            logger.warning(
                "game %s: closed the flooding socket of the %s (worker %s) after %s messages "
                "refused",
                self.game_id,
                self.role,
                self.worker_id,
                self.refused,
            )
            await self.close(code=4429)
            return
        await self.send_error("flooding", "too many messages; slow down", store=False)

    async def send_error(self, code: str, message: str, *, store: bool = True) -> None:
        if store:
            await self.store_refusal(code)
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))

    async def store_refusal(self, code: str) -> None:
        """Log and store a refused message, at most ``REFUSED_EVENTS_BURST`` at once and
        ``REFUSED_EVENTS_RATE`` a second after that; the next one stored counts those left out."""
        if not self.refusal_log.take():
            self.unlogged_refusals += 1
            return
        payload: dict = {"code": code}
        if self.unlogged_refusals:
            payload["unlogged"] = self.unlogged_refusals
        logger.warning(
            "game %s: refused message from the %s (worker %s): %s (%s before it not logged)",
            self.game_id,
            self.role,
            self.worker_id,
            code,
            self.unlogged_refusals,
        )
        self.unlogged_refusals = 0
        await db(engine.record_event)(
            self.game_id, GameEvent.Kind.REFUSED, self.role or "", **payload
        )


def _version_of(game_id: int) -> int | None:
    return Game.objects.filter(pk=game_id).values_list("version", flat=True).first()


def _from_ms(value: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value / 1000, tz=UTC)
