"""A web process killed mid-game: the players reconnect to a new one and lose nothing."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from games.live import clock
from games.models import Game

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
