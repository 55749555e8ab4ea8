"""Websocket consumers of live play: the game page and the lobby page.

A socket belongs to the worker of the browser session (never to an id the client names). Every
message is checked by the engine under the game's row lock; refusals go back to the sender only,
are logged and stored as events, and change nothing. Each connection has a token bucket against
flooding.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from asgiref.sync import sync_to_async
from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import reverse

from games.live import engine, lobby, notify, timers
from games.live.engine import Change, PlayError, Refused
from games.models import Game, GameEvent
from games.workers import SESSION_KEY

logger = logging.getLogger("games.live")

MAX_MESSAGE_CHARS = 8192
BUCKET_SIZE = 20
BUCKET_RATE = 10.0
FLOOD_CLOSE_AFTER = 200
MODEL_POLL_SECONDS = 0.3
PAIR_RETRY_SECONDS = 0.5


def monotonic() -> float:
    """The flood limiter's clock (tests replace it)."""
    return time.monotonic()


def db(fn):
    """Run ORM code in the shared thread pool (not the single sync thread): players don't queue
    behind each other's database round trips."""
    return DatabaseSyncToAsync(fn, thread_sensitive=False)


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


async def session_worker_id(scope) -> int | None:
    session = scope.get("session")
    if session is None:
        return None
    value = await db(session.get)(SESSION_KEY)
    return value if isinstance(value, int) else None


async def expire_and_publish(game_id: int) -> None:
    """Timer callback: apply a due timeout and tell the players."""
    change = await db(engine.expire_due)(game_id)
    if change is None:
        deadline = await db(_deadline_of)(game_id)
        if deadline is not None:
            timers.schedule(game_id, deadline, expire_and_publish)
        return
    await publish(change)


def _deadline_of(game_id: int):
    return (
        Game.objects.filter(pk=game_id, status=Game.Status.PLAYING)
        .values_list("deadline", flat=True)
        .first()
    )


async def publish(change: Change) -> None:
    from channels.layers import get_channel_layer

    await get_channel_layer().group_send(
        notify.game_group(change.game_id), notify.update_message(change)
    )
    timers.schedule(change.game_id, change.deadline, expire_and_publish)
    await background(notify.send_followups)(change)


class GameConsumer(AsyncWebsocketConsumer):
    """One player's socket of one game: ``/ws/play/game/<game_id>/``."""

    async def connect(self) -> None:
        self.game_id = int(self.scope["url_route"]["kwargs"]["game_id"])
        self.worker_id = await session_worker_id(self.scope)
        self.role = None
        self.version = -1
        self.bucket = TokenBucket()
        self.refused = 0
        self.poller: asyncio.Task | None = None
        try:
            view = await db(engine.current_view)(self.game_id, self.worker_id)
        except (PlayError, Game.DoesNotExist):
            logger.warning(
                "refused game socket: worker %s is not a player of game %s",
                self.worker_id,
                self.game_id,
            )
            await self.close(code=4403)
            return
        self.role = view["role"]
        self.model_game = view.get("partner") == "model"
        self.group = notify.game_group(self.game_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await db(engine.record_event)(self.game_id, GameEvent.Kind.CONNECT, self.role)
        change = await db(engine.expire_due)(self.game_id)
        if change is not None:
            await publish(change)
            view = change.views.get(self.role, view)
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
        if view["status"] == Game.Status.PLAYING and view.get("deadline_ms") is not None:
            timers.schedule(self.game_id, _from_ms(view["deadline_ms"]), expire_and_publish)
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
        if not self.bucket.take():
            self.refused += 1
            if self.refused in (1, 50) or self.refused % 100 == 0:
                logger.warning(
                    "game %s: flooding from the %s (worker %s): %s messages refused",
                    self.game_id,
                    self.role,
                    self.worker_id,
                    self.refused,
                )
            await self.send_error("flooding", "too many messages; slow down", store=False)
            if self.refused >= FLOOD_CLOSE_AFTER:
                await self.close(code=4429)
            return
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self.send_error("too_large", "messages must be text of at most 8192 characters")
            return
        try:
            message = json.loads(text_data)
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
                change = await db(engine.expire_due)(self.game_id)
                if change is not None:
                    await publish(change)
                view = await db(engine.current_view)(self.game_id, self.worker_id)
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

    async def send_error(self, code: str, message: str, *, store: bool = True) -> None:
        if store:
            logger.warning(
                "game %s: refused message from the %s (worker %s): %s",
                self.game_id,
                self.role,
                self.worker_id,
                code,
            )
            await db(engine.record_event)(
                self.game_id, GameEvent.Kind.REFUSED, self.role or "", code=code
            )
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))


def _version_of(game_id: int) -> int | None:
    return Game.objects.filter(pk=game_id).values_list("version", flat=True).first()


def _from_ms(value: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value / 1000, tz=UTC)


class LobbyConsumer(AsyncWebsocketConsumer):
    """A waiting worker's socket, ``/ws/play/lobby/<round_id>/``: says when they are paired."""

    async def connect(self) -> None:
        self.round_id = int(self.scope["url_route"]["kwargs"]["round_id"])
        self.worker_id = await session_worker_id(self.scope)
        self.group = None
        self.retry: asyncio.Future | None = None
        self.bucket = TokenBucket(size=5, rate=1.0)
        if self.worker_id is None:
            await self.close(code=4403)
            return
        # Presence first, then the game: a partner may pair this worker between the two reads.
        waiting = await db(lobby.heartbeat)(self.round_id, self.worker_id)
        game = None if waiting is not None else await db(lobby.active_game)(self.worker_id)
        if game is None and waiting is None:
            await self.close(code=4404)
            return
        self.group = notify.worker_group(self.worker_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if game is not None:
            await self.send_paired(game.pk)
            return
        await self.send(text_data=json.dumps({"type": "waiting"}))
        await self.pair()

    async def disconnect(self, code) -> None:
        if self.retry is not None:
            self.retry.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if not self.bucket.take():
            return
        waiting = await db(lobby.heartbeat)(self.round_id, self.worker_id)
        if waiting is None:
            game = await db(lobby.active_game)(self.worker_id)
            if game is not None:
                await self.send_paired(game.pk)
            else:
                await self.close(code=4404)
            return
        await self.pair()

    async def pair(self) -> None:
        pairings = await db(lobby.try_pair)(self.round_id)
        if pairings is None:  # someone else is pairing this round: look again in a moment
            await asyncio.sleep(PAIR_RETRY_SECONDS)
            waiting = await db(lobby.heartbeat)(self.round_id, self.worker_id)
            if waiting is not None:
                self.retry = asyncio.ensure_future(self.pair())
            return
        for pairing in pairings:
            for worker_id in pairing.worker_ids:
                await self.channel_layer.group_send(
                    notify.worker_group(worker_id),
                    {"type": "lobby.paired", "game": pairing.game_id},
                )
            timers.schedule(pairing.game_id, pairing.deadline, expire_and_publish)
            await background(notify.schedule_deadline_task)(pairing.game_id, pairing.deadline)

    async def lobby_paired(self, event: dict) -> None:
        await self.send_paired(event["game"])

    async def send_paired(self, game_id: int) -> None:
        url = reverse("games:play_game", args=[game_id])
        await self.send(text_data=json.dumps({"type": "paired", "game": game_id, "url": url}))
