"""Socket limits: sockets per player, the rate of stored refusals, paths that match nothing."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from games.models import Game, GameEvent

from . import helpers
from .live_game import start_game

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def socket_for(path: str, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@sync_to_async
def speaker_game(clock) -> tuple[int, str]:
    game, speaker, _ = start_game(
        clock(), "B-FFT", listener=False, external_id="sockets", names=("s", "l")
    )
    return game.pk, helpers.session_cookie(speaker)


def events(game_id: int, kind: str) -> list[dict]:
    return list(
        GameEvent.objects.filter(game_id=game_id, kind=kind)
        .order_by("id")
        .values_list("payload", flat=True)
    )


async def test_a_player_holds_at_most_the_configured_number_of_sockets(clock, settings):
    settings.PLAY_MAX_SOCKETS_PER_PLAYER = 2
    game_id, cookie = await speaker_game(clock)
    path = f"/ws/play/game/{game_id}/"
    first, second = socket_for(path, cookie), socket_for(path, cookie)
    for socket in (first, second):
        assert await socket.connect(timeout=5) == (True, None)
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
    third = socket_for(path, cookie)
    assert await third.connect(timeout=5) == (True, None)
    assert await third.receive_json_from(timeout=5) == {
        "type": "refused",
        "reason": "too_many_sockets",
        "message": "The game is open in more than 2 pages or tabs; close the others.",
    }
    closed = await third.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4429)
    await first.disconnect()
    again = socket_for(path, cookie)  # a closed socket frees its place
    assert await again.connect(timeout=5) == (True, None)
    assert (await again.receive_json_from(timeout=5))["type"] == "state"
    await second.disconnect()
    await again.disconnect()
    connects = await sync_to_async(events)(game_id, "connect")
    assert len(connects) == 3  # the refused socket wrote nothing


async def test_refused_messages_are_stored_at_a_bounded_rate(clock, monkeypatch):
    limiter_time = [1000.0]
    monkeypatch.setattr("games.live.consumers.monotonic", lambda: limiter_time[0])
    game_id, cookie = await speaker_game(clock)
    socket = socket_for(f"/ws/play/game/{game_id}/", cookie)
    assert (await socket.connect(timeout=5))[0]
    await socket.receive_json_from(timeout=5)
    # 15 bad messages within the flood limit (20): every one is answered, 10 are stored.
    for _ in range(15):
        await socket.send_to(text_data="{not json")
    codes = [(await socket.receive_json_from(timeout=5))["code"] for _ in range(15)]
    assert codes == ["bad_json"] * 15
    limiter_time[0] += 5  # one more token for stored refusals
    await socket.send_to(text_data=json.dumps({"type": "cheat"}))
    assert (await socket.receive_json_from(timeout=5))["code"] == "unknown_type"
    await socket.disconnect()
    stored = await sync_to_async(events)(game_id, "refused")
    assert stored == [{"code": "bad_json"}] * 10 + [{"code": "unknown_type", "unlogged": 5}]


@pytest.mark.parametrize(
    "path", ["/ws/nothing/", "/ws/play/game/not-a-number/", "/ws/play/lobby/", "/"]
)
async def test_a_path_that_matches_nothing_is_refused_cleanly(path):
    socket = socket_for(path)
    assert await socket.connect(timeout=5) == (False, 4404)


async def test_a_flooding_socket_is_closed_once_with_one_log_line(clock, monkeypatch, caplog):
    from games.live.consumers import BUCKET_SIZE, FLOOD_CLOSE_AFTER

    monkeypatch.setattr("games.live.consumers.monotonic", lambda: 1000.0)  # no token comes back
    game_id, cookie = await speaker_game(clock)
    worker = await sync_to_async(lambda: Game.objects.get(pk=game_id).speaker_id)()
    socket = socket_for(f"/ws/play/game/{game_id}/", cookie)
    assert (await socket.connect(timeout=5))[0]
    await socket.receive_json_from(timeout=5)
    for _ in range(BUCKET_SIZE):
        await socket.send_json_to({"type": "sync"})
        assert (await socket.receive_json_from(timeout=5))["type"] == "state"
    caplog.clear()
    for _ in range(FLOOD_CLOSE_AFTER + 5):  # the last five arrive after the close was sent
        await socket.send_to(text_data="{}")
    codes = [(await socket.receive_json_from(timeout=5))["code"] for _ in range(199)]
    assert codes == ["flooding"] * (FLOOD_CLOSE_AFTER - 1)
    closed = await socket.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4429)
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
    lines = [r.getMessage() for r in caplog.records if "flooding" in r.getMessage()]
    assert lines == [
        f"game {game_id}: flooding from the speaker (worker {worker}): 1 messages refused",
        f"game {game_id}: flooding from the speaker (worker {worker}): 50 messages refused",
        f"game {game_id}: flooding from the speaker (worker {worker}): 100 messages refused",
        f"game {game_id}: closed the flooding socket of the speaker (worker {worker}) after "
        "200 messages refused",
    ]
    assert not [r for r in caplog.records if r.exc_info]
