"""Arrivals under overload: a web process takes a bounded number of lobby arrivals at a time and
answers the rest at once with "come back in a few seconds", never with a broken connection.

An arrival is a lobby page request (``GET /play/lobby/<round>/``) or a lobby socket
(``/ws/play/lobby/<round>/``), from the moment it reaches the process until it is answered: the
page's response starts, the socket sends its first message or closes. Each costs a few database
queries; a burst of hundreds at once would otherwise queue in the process for a minute and more
(and a socket not accepted within 5 s is cut by Daphne, so the browser saw a failed connection:
the lobby socket now accepts at once, ``games.live.lobby_consumer``).

``ArrivalGate`` counts them per process, pages and sockets apart. Beyond
``PLAY_ARRIVALS_IN_PROGRESS`` pages, or ``SOCKETS_PER_PAGE`` times as many sockets, it answers

- the page with ``503`` and ``Retry-After: <s>``, a page saying that many people are arriving
  and that it tries again in ``s`` seconds (a ``<meta http-equiv="refresh">`` reloads it);
- the socket by accepting it, sending ``{"type": "busy", "retry_in": s, "message": …}`` and
  closing with code 4503 (``BUSY_CLOSE_CODE``); the lobby page shows the message and opens the
  socket again after ``s`` seconds.

``s`` is drawn between ``RETRY_SECONDS`` so that the arrivals told to wait come back spread out,
not all at once. Every such answer is logged at INFO (``games.live`` logger, a count per second
would be the same information).
"""

from __future__ import annotations

import json
import logging
import random
import re
from html import escape

from django.conf import settings

logger = logging.getLogger("games.live")

BUSY_CLOSE_CODE = 4503
# An arrival is answered by its response (the page) or its first message or close (the socket:
# the lobby socket accepts at once, then says "waiting", "paired" or why it refuses).
ANSWERED = ("http.response.start", "websocket.send", "websocket.close")
RETRY_SECONDS = (3.0, 10.0)
LOBBY_PAGE = re.compile(r"^/play/lobby/\d+/$")
LOBBY_SOCKET = re.compile(r"^/ws/play/lobby/\d+/$")
BUSY_MESSAGE = (
    "Many people are arriving at once. You keep your place in the study: this page tries again "
    "in {seconds} seconds, please keep it open."
)


# A worker whose page was served waits in the lobby from then on (and may be paired): their
# socket is turned away only far beyond what the page limit lets in, so that it comes in.
SOCKETS_PER_PAGE = 4


def arrivals_limit(kind: str = "page") -> int:
    pages = int(getattr(settings, "PLAY_ARRIVALS_IN_PROGRESS", 24))
    return pages if kind == "page" else SOCKETS_PER_PAGE * pages


def arrival_kind(scope: dict) -> str | None:
    """``page`` or ``socket`` for a lobby arrival, None for anything else."""
    path = scope.get("path", "")
    if scope["type"] == "http" and scope.get("method") == "GET" and LOBBY_PAGE.match(path):
        return "page"
    if scope["type"] == "websocket" and LOBBY_SOCKET.match(path):
        return "socket"
    return None


def retry_seconds(rng: random.Random | None = None) -> int:
    low, high = RETRY_SECONDS
    return round((rng or random).uniform(low, high))


class ArrivalGate:
    """ASGI middleware bounding the lobby arrivals in progress in this process (module doc)."""

    def __init__(self, app) -> None:
        self.app = app
        self.in_progress = {"page": 0, "socket": 0}
        self.turned_away = 0

    async def __call__(self, scope, receive, send) -> None:
        kind = arrival_kind(scope)
        if kind is None:
            await self.app(scope, receive, send)
            return
        if self.in_progress[kind] >= arrivals_limit(kind):
            self.turned_away += 1
            seconds = retry_seconds()
            logger.info(
                "lobby busy: %s arrival asked to retry in %s s (%s in progress, %s so far)",
                kind,
                seconds,
                self.in_progress[kind],
                self.turned_away,
            )
            if kind == "page":
                await busy_page(send, seconds)
            else:
                await busy_socket(receive, send, seconds)
            return
        self.in_progress[kind] += 1
        counted = True

        def finish() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.in_progress[kind] -= 1

        async def watched(message: dict) -> None:
            if message["type"] in ANSWERED:
                finish()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            finish()


async def busy_page(send, seconds: int) -> None:
    text = escape(BUSY_MESSAGE.format(seconds=seconds))
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{seconds}'><title>Arriving…</title></head>"
        f"<body><p id='busy'>{text}</p></body></html>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"retry-after", str(seconds).encode()),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def busy_socket(receive, send, seconds: int) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    busy = {
        "type": "busy",
        "retry_in": seconds,
        "message": BUSY_MESSAGE.format(seconds=seconds),
    }
    await send({"type": "websocket.send", "text": json.dumps(busy)})
    await send({"type": "websocket.close", "code": BUSY_CLOSE_CODE})
