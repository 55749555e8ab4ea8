"""A bound on the HTTP requests a web process runs at once; the others wait their turn in the
event loop.

Django runs each request's view and middleware in a thread of its own. A burst of page loads
(a pairing run sends every player it paired to the game page at once) would start hundreds of
threads, and each of them contends for the interpreter lock with the event loop that carries
the moves of the games in play: a move waited behind a hundred page renders. Bounded, the pages
are served at the same rate (the process's CPU is the limit either way), and the event loop
keeps its turn. Websockets are not bounded here (their database work runs in the bounded pools
of ``games.live.consumers``); lobby arrivals beyond ``config.arrivals``' limit are turned away
before they wait here.
"""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings

DEFAULT_LIMIT = 4


def page_limit() -> int:
    """``WEB_PAGES_AT_ONCE``, at least 1."""
    return max(1, int(getattr(settings, "WEB_PAGES_AT_ONCE", DEFAULT_LIMIT)))


class PageThreads:
    """ASGI middleware: at most ``WEB_PAGES_AT_ONCE`` HTTP requests in Django at once per event
    loop (module doc); the rest wait, first come first served."""

    def __init__(self, app) -> None:
        self.app = app
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(page_limit())
        return slots

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self.slots():
            await self.app(scope, receive, send)
