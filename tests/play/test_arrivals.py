"""Arrivals under overload (``config.arrivals``): beyond the arrivals a process takes at once,
the lobby page and the lobby socket answer "come back in s seconds", never a broken connection."""

from __future__ import annotations

import asyncio
import re

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from config import arrivals, page_threads
from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def busy_text(seconds: int) -> str:
    return (
        "Many people are arriving at once. You keep your place in the study: this page tries "
        f"again in {seconds} seconds, please keep it open."
    )


async def test_a_lobby_socket_beyond_the_limit_is_told_to_come_back(settings):
    settings.PLAY_ARRIVALS_IN_PROGRESS = 0
    socket = WebsocketCommunicator(
        application, "/ws/play/lobby/7/", headers=[(b"origin", b"http://localhost")]
    )
    assert await socket.connect(timeout=5) == (True, None)
    message = await socket.receive_json_from(timeout=5)
    seconds = message["retry_in"]
    assert seconds in range(3, 11)
    assert message == {"type": "busy", "retry_in": seconds, "message": busy_text(seconds)}
    closed = await socket.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4503)


async def test_a_lobby_page_beyond_the_limit_answers_503_with_retry_after(settings):
    settings.PLAY_ARRIVALS_IN_PROGRESS = 0
    response = await HttpCommunicator(application, "GET", "/play/lobby/7/").get_response(5)
    headers = dict(response["headers"])
    seconds = int(headers[b"retry-after"])
    assert response["status"] == 503
    assert seconds in range(3, 11)
    body = response["body"].decode()
    assert f"<meta http-equiv='refresh' content='{seconds}'>" in body
    assert re.search(r"<p id='busy'>(.*?)</p>", body).group(1) == busy_text(seconds)


async def test_other_requests_are_never_turned_away(settings):
    settings.PLAY_ARRIVALS_IN_PROGRESS = 0
    for method, path in [("GET", "/accounts/login/"), ("POST", "/play/lobby/7/leave/")]:
        response = await HttpCommunicator(application, method, path).get_response(10)
        assert response["status"] != 503, path


async def test_an_arrival_counts_until_its_response_starts(settings):
    """With a limit of 1: a second arrival while the first is in progress is turned away, and
    one after the first answered is taken."""
    settings.PLAY_ARRIVALS_IN_PROGRESS = 1
    release = asyncio.Event()
    answered = []

    async def slow_page(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        answered.append(scope["path"])
        await send({"type": "http.response.body", "body": b"lobby"})

    gate = arrivals.ArrivalGate(slow_page)
    first = HttpCommunicator(gate, "GET", "/play/lobby/1/")
    pending = asyncio.ensure_future(first.get_response(5))
    while gate.in_progress["page"] == 0:
        await asyncio.sleep(0.01)
    second = await HttpCommunicator(gate, "GET", "/play/lobby/1/").get_response(5)
    assert second["status"] == 503
    release.set()
    assert (await pending)["status"] == 200
    assert gate.in_progress == {"page": 0, "socket": 0}
    third = await HttpCommunicator(gate, "GET", "/play/lobby/1/").get_response(5)
    assert third["status"] == 200
    assert (answered, gate.turned_away) == (["/play/lobby/1/", "/play/lobby/1/"], 1)


async def test_the_lobby_socket_accepts_before_it_looks_the_worker_up():
    """A handshake never waits on the database (a server cuts handshakes that wait): a socket
    without a worker is accepted, then closed with 4403, which the page reads."""
    socket = WebsocketCommunicator(
        application, "/ws/play/lobby/7/", headers=[(b"origin", b"http://localhost")]
    )
    assert await socket.connect(timeout=5) == (True, None)
    closed = await socket.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4403)


async def test_a_socket_handshake_never_waits_for_the_thread_that_renders_pages():
    """Pages render in the process's one thread for synchronous code; while it is busy (here:
    held until the end of the test), a lobby socket is still accepted and answered."""
    from asgiref.sync import sync_to_async

    held = asyncio.Event()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def busy_page_thread() -> None:
        loop.call_soon_threadsafe(held.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()

    page = asyncio.ensure_future(sync_to_async(busy_page_thread, thread_sensitive=True)())
    await held.wait()
    try:
        socket = WebsocketCommunicator(
            application, "/ws/play/lobby/7/", headers=[(b"origin", b"http://localhost")]
        )
        assert await socket.connect(timeout=5) == (True, None)
        closed = await socket.receive_output(timeout=5)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4403)
    finally:
        release.set()
        await page


async def test_pages_run_a_few_at_a_time_and_the_rest_wait_their_turn(settings):
    """``config.page_threads``: a burst of page loads runs at most the limit at once (each page
    holds a thread that contends with the event loop); every page is still served, in order."""
    settings.WEB_PAGES_AT_ONCE = 2
    running, most, served = 0, 0, []
    release = asyncio.Event()

    async def page(scope, receive, send):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        served.append(scope["path"])
        await send({"type": "http.response.body", "body": b"page"})

    bounded = page_threads.PageThreads(page)
    paths = [f"/play/game/{index}/" for index in range(6)]
    pending = [
        asyncio.ensure_future(HttpCommunicator(bounded, "GET", path).get_response(5))
        for path in paths
    ]
    while running < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert (running, served) == (2, [])
    release.set()
    assert [response["status"] for response in await asyncio.gather(*pending)] == [200] * 6
    assert (most, served) == (2, paths)


async def test_sockets_are_not_bounded_by_the_page_limit(settings):
    """A websocket never waits behind pages: with the one page slot taken, a socket is served."""
    settings.WEB_PAGES_AT_ONCE = 1
    release = asyncio.Event()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"page"})
            return
        await receive()
        await send({"type": "websocket.accept"})

    bounded = page_threads.PageThreads(app)
    page = asyncio.ensure_future(HttpCommunicator(bounded, "GET", "/play/game/1/").get_response(5))
    await asyncio.sleep(0.05)
    socket = WebsocketCommunicator(bounded, "/ws/play/game/1/")
    assert await socket.connect(timeout=5) == (True, None)
    assert not page.done()
    release.set()
    assert (await page)["status"] == 200
