"""A web process killed mid-game, or while a player waits in the lobby: the players reconnect to
a new one and lose nothing."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from games.live import clock
from games.models import Game, LobbyEntry

from . import helpers
from .live_game import start_game

pytestmark = pytest.mark.django_db(transaction=True)


def make_game() -> tuple[Game, str, str]:
    game, speaker, listener = start_game(clock.now(), external_id="restart", names=("s", "l"))
    return game, helpers.session_cookie(speaker), helpers.session_cookie(listener)


async def socket(server, game_id: int, cookie: str):
    return await connect(
        f"ws://127.0.0.1:{server.port}/ws/play/game/{game_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
    )


async def receive(ws, kind: str = "state") -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    assert message["type"] == kind, message
    return message


def test_a_killed_web_process_loses_no_move(play_server):
    game, speaker_cookie, listener_cookie = make_game()

    async def scenario() -> dict:
        speaker = await socket(play_server, game.pk, speaker_cookie)
        listener = await socket(play_server, game.pk, listener_cookie)
        await receive(speaker)
        await receive(listener)
        await speaker.send(json.dumps({"type": "utterance", "text": "the first one"}))
        deadline = (await receive(listener))["deadline_ms"]
        await receive(speaker)
        await listener.send(json.dumps({"type": "toggle", "tangram": "page1-0"}))
        assert (await receive(listener, "draft"))["draft"] == ["page1-0"]

        play_server.stop(kill=True)
        for ws in (speaker, listener):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
        play_server.start()

        speaker = await socket(play_server, game.pk, speaker_cookie)
        listener = await socket(play_server, game.pk, listener_cookie)
        state = await receive(listener)
        assert (state["phase"], state["turn"], state["draft"], state["utterance"]) == (
            "listener",
            0,
            ["page1-0"],
            "the first one",
        )
        assert state["deadline_ms"] == deadline  # the same absolute deadline: no time lost or won
        await receive(speaker)
        await listener.send(json.dumps({"type": "submit"}))
        after = await receive(speaker)
        await speaker.close()
        await listener.close()
        return after

    after = asyncio.run(scenario())
    assert (after["phase"], after["turn"], after["selection"]) == ("speaker", 1, ["page1-0"])
    turn = game.turns.get(index=0)
    assert (turn.utterance, turn.action, turn.selection_after) == (
        "the first one",
        "select J",
        ["page1-0"],
    )
    kinds = list(game.events.values_list("kind", flat=True))
    assert kinds.count("toggle") == 1 and kinds.count("submit") == 1


def arrive_by_page(server, round_id: int, cookie: str) -> int:
    """Open the lobby page as the browser does (it puts the worker in the lobby)."""
    request = urllib.request.Request(
        f"{server.url}/play/lobby/{round_id}/", headers={"Cookie": f"sessionid={cookie}"}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


async def lobby_socket(server, round_id: int, cookie: str):
    return await connect(
        f"ws://127.0.0.1:{server.port}/ws/play/lobby/{round_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
    )


def test_a_player_waiting_when_the_web_process_dies_is_paired_after_reconnecting(play_server):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "HH")
    first, second = helpers.participant(round_, "first"), helpers.participant(round_, "second")
    first_cookie, second_cookie = helpers.session_cookie(first), helpers.session_cookie(second)

    async def scenario() -> tuple[dict, dict]:
        assert await asyncio.to_thread(arrive_by_page, play_server, round_.pk, first_cookie) == 200
        waiting = await lobby_socket(play_server, round_.pk, first_cookie)
        assert await receive(waiting, "waiting") == {"type": "waiting", "for": "human"}

        play_server.stop(kill=True)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(waiting.recv(), timeout=10)
        play_server.start()

        waiting = await lobby_socket(play_server, round_.pk, first_cookie)
        await receive(waiting, "waiting")
        assert await asyncio.to_thread(arrive_by_page, play_server, round_.pk, second_cookie) == 200
        arriving = await lobby_socket(play_server, round_.pk, second_cookie)
        message = json.loads(await asyncio.wait_for(arriving.recv(), timeout=10))
        if message["type"] == "waiting":  # pairing ran after the socket's first look
            message = await receive(arriving, "paired")
        paired_first = await receive(waiting, "paired")
        await waiting.close()
        await arriving.close()
        return paired_first, message

    paired_first, paired_second = asyncio.run(scenario())
    assert paired_first == paired_second
    assert (paired_first["type"], paired_first["partner"]) == ("paired", "human")
    game = Game.objects.get(pk=paired_first["game"])
    assert ({game.speaker, game.listener}, game.system.name, game.status) == (
        {first, second},
        "HH",
        "playing",
    )
    entries = LobbyEntry.objects.filter(round=round_).order_by("arrived_at")
    assert [(e.worker, e.status, e.game_id) for e in entries] == [
        (first, "paired", game.pk),
        (second, "paired", game.pk),
    ]
