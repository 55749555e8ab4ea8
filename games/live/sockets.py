"""Limits on players' sockets, and the answer to a socket for a path that matches nothing.

- A player holds at most ``PLAY_MAX_SOCKETS_PER_PLAYER`` open sockets (game and lobby pages
  together) in one web process; more are refused with close code ``TOO_MANY``. The count lives in
  the process (a killed process takes its count with it, so nobody is locked out after a
  restart); with N web processes a player may hold N times the limit.
- ``NoRouteConsumer`` ends the routing table: a socket for an unknown path is rejected at the
  handshake (close code ``NO_ROUTE``) instead of failing with a traceback in the router.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

logger = logging.getLogger("games.live")

TOO_MANY = 4429
NO_ROUTE = 4404
DEFAULT_LIMIT = 4

_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _open_sockets() -> dict[int, set[str]]:
    """Worker id → channel names of their open sockets, for this process's event loop."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = {}
    return registry


def limit() -> int:
    return int(getattr(settings, "PLAY_MAX_SOCKETS_PER_PLAYER", DEFAULT_LIMIT))


def claim(worker_id: int, channel_name: str) -> bool:
    """Count one more open socket of the worker; False (and nothing counted) over the limit."""
    sockets = _open_sockets().setdefault(worker_id, set())
    if channel_name in sockets:
        return True
    if len(sockets) >= limit():
        logger.warning("worker %s: socket refused, %s already open", worker_id, len(sockets))
        return False
    sockets.add(channel_name)
    return True


def release(worker_id: int, channel_name: str) -> None:
    registry = _open_sockets()
    sockets = registry.get(worker_id)
    if sockets is None:
        return
    sockets.discard(channel_name)
    if not sockets:
        del registry[worker_id]


def open_count(worker_id: int) -> int:
    return len(_open_sockets().get(worker_id, ()))


class NoRouteConsumer(AsyncWebsocketConsumer):
    """The last websocket route: refuse every socket it gets, cleanly."""

    async def connect(self) -> None:
        logger.info("websocket for unknown path %r refused", self.scope.get("path", "")[:200])
        await self.close(code=NO_ROUTE)
