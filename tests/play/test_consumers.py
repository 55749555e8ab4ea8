"""Consumers over real websocket connections through the project's ASGI application."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator

from config.asgi import application
from games.live import lobby
from games.models import Game, GameEvent
from games.play import record_model_action

from . import helpers
from .live_game import start_game

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def open_socket(path: str, cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(path: str, cookie: str | None) -> WebsocketCommunicator:
    socket = await open_socket(path, cookie)
    ok, code = await socket.connect(timeout=5)
    assert ok, code
    return socket


async def next_state(socket: WebsocketCommunicator, kind: str = "state", **expected) -> dict:
    """The next message, which must be of ``kind`` and match ``expected``."""
    message = await socket.receive_json_from(timeout=5)
    assert message["type"] == kind, message
    for key, value in expected.items():
        assert message[key] == value, (key, message)
    return message


@sync_to_async
def setup_round(system: str = "HH", **study_settings):
    helpers.tangrams()
    study = helpers.study(**study_settings)
    round_ = helpers.round_with(study, system)
    return round_


@sync_to_async
def setup_game(clock, system="HH", **study_settings):
    game, speaker, listener = start_game(
        clock(),
        system,
        listener=system == "HH",
        external_id="g",
        names=("s", "l"),
        **study_settings,
    )
    cookies = (
        helpers.session_cookie(speaker),
        helpers.session_cookie(listener) if listener else None,
    )
    return game.pk, cookies


@pytest.mark.postgresql("two sockets write the lobby at once, which locks SQLite's tables")
async def test_two_workers_are_paired_in_the_lobby_and_play_to_success():
    round_ = await setup_round()
    first, second = await sync_to_async(
        lambda: (helpers.participant(round_, "a"), helpers.participant(round_, "b"))
    )()
    cookies = {}
    for worker in (first, second):
        await sync_to_async(lobby.arrive)(round_, worker)
        cookies[worker.pk] = await sync_to_async(helpers.session_cookie)(worker)
    lobby_a = await connected(f"/ws/play/lobby/{round_.pk}/", cookies[first.pk])
    assert (await lobby_a.receive_json_from(timeout=5))["type"] in ("waiting", "paired")
    lobby_b = await connected(f"/ws/play/lobby/{round_.pk}/", cookies[second.pk])
    messages = [await lobby_b.receive_json_from(timeout=5)]
    if messages[0]["type"] == "waiting":
        messages.append(await lobby_b.receive_json_from(timeout=5))
    paired_b = messages[-1]
    paired_a = await lobby_a.receive_json_from(timeout=5)
    if paired_a["type"] == "waiting":
        paired_a = await lobby_a.receive_json_from(timeout=5)
    assert paired_a["type"] == paired_b["type"] == "paired"
    assert paired_a["game"] == paired_b["game"]
    assert paired_a["url"] == f"/play/game/{paired_a['game']}/"
    await lobby_a.disconnect()
    await lobby_b.disconnect()

    game = await sync_to_async(Game.objects.select_related("config").get)(pk=paired_a["game"])
    speaker_cookie, listener_cookie = cookies[game.speaker_id], cookies[game.listener_id]
    path = f"/ws/play/game/{game.pk}/"
    speaker = await connected(path, speaker_cookie)
    listener = await connected(path, listener_cookie)
    state = await next_state(speaker, role="speaker", phase="speaker", turn=0)
    assert [i["id"] for i in state["images"]] == game.config.speaker_order
    assert {i["id"] for i in state["images"] if i["target"]} == set(game.config.targets)
    state = await next_state(listener, role="listener", phase="speaker")
    assert [i["id"] for i in state["images"]] == game.config.listener_order
    assert "target" not in json.dumps(state["images"])

    await speaker.send_json_to({"type": "utterance", "text": "the three targets"})
    await next_state(listener, phase="listener", utterance="the three targets")
    await next_state(speaker, phase="listener")
    for name in game.config.targets:
        await listener.send_json_to({"type": "toggle", "tangram": name})
        await next_state(listener, "draft", phase="listener")
    assert await speaker.receive_nothing(timeout=0.2)
    await listener.send_json_to({"type": "submit"})
    ended = await next_state(speaker, status="ended", outcome="successful")
    assert set(ended["selection"]) == set(game.config.targets)
    assert ended["earned_total"] == "1.01"
    await next_state(listener, status="ended", outcome="successful", earned_total="1.01")
    await speaker.disconnect()
    await listener.disconnect()


async def test_a_listener_who_reconnects_mid_turn_gets_the_same_turn_and_time(clock):
    game_id, (speaker_cookie, listener_cookie) = await setup_game(clock)
    path = f"/ws/play/game/{game_id}/"
    speaker = await connected(path, speaker_cookie)
    listener = await connected(path, listener_cookie)
    await next_state(speaker)
    await next_state(listener)
    clock.advance(2)
    await speaker.send_json_to({"type": "utterance", "text": "the bird and the boat"})
    await next_state(listener, phase="listener")
    await next_state(speaker, phase="listener")
    await listener.send_json_to({"type": "toggle", "tangram": "page1-4"})
    await next_state(listener, "draft", draft=["page1-4"])
    await listener.disconnect()

    clock.advance(10)
    listener = await connected(path, listener_cookie)
    state = await next_state(listener, phase="listener", turn=0, draft=["page1-4"])
    assert state["utterance"] == "the bird and the boat"
    assert state["deadline_ms"] - state["server_ms"] == 35_000
    await listener.send_json_to({"type": "toggle", "tangram": "page1-0"})
    await next_state(listener, "draft", draft=["page1-4", "page1-0"])
    await listener.send_json_to({"type": "submit"})
    state = await next_state(speaker, phase="speaker", turn=1)
    assert state["selection"] == ["page1-4", "page1-0"]
    kinds = await sync_to_async(
        lambda: list(
            GameEvent.objects.filter(game_id=game_id, role="listener").values_list(
                "kind", flat=True
            )
        )
    )()
    assert kinds == ["connect", "toggle", "disconnect", "connect", "toggle", "submit"]
    await speaker.disconnect()
    await listener.disconnect()


async def test_a_missed_turn_is_enforced_on_the_next_event(clock):
    game_id, (speaker_cookie, listener_cookie) = await setup_game(clock)
    path = f"/ws/play/game/{game_id}/"
    speaker = await connected(path, speaker_cookie)
    listener = await connected(path, listener_cookie)
    await next_state(speaker)
    await next_state(listener)
    clock.advance(31)
    await listener.send_json_to({"type": "sync"})
    await next_state(
        speaker, status="ended", outcome="idle", end_reason="speaker idled", earned_total="0.00"
    )
    await next_state(listener, status="ended", end_reason="speaker idled", earned_total="0.81")
    await speaker.disconnect()
    await listener.disconnect()


async def test_bad_input_is_refused_logged_and_harmless(clock, caplog, monkeypatch):
    limiter_time = [1000.0]
    monkeypatch.setattr("games.live.consumers.monotonic", lambda: limiter_time[0])
    game_id, (speaker_cookie, listener_cookie) = await setup_game(clock)
    path = f"/ws/play/game/{game_id}/"
    stranger = await sync_to_async(helpers.worker)("stranger")
    stranger_cookie = await sync_to_async(helpers.session_cookie)(stranger)
    for cookie in (stranger_cookie, None, "forged-session-key"):
        socket = await open_socket(path, cookie)
        ok, code = await socket.connect(timeout=5)
        assert (ok, code) == (False, 4403)
    socket = await open_socket("/ws/play/game/999999/", speaker_cookie)
    assert await socket.connect(timeout=5) == (False, 4403)

    speaker = await connected(path, speaker_cookie)
    listener = await connected(path, listener_cookie)
    await next_state(speaker)
    await next_state(listener)

    async def refused(socket, payload, code):
        await socket.send_to(text_data=payload if isinstance(payload, str) else json.dumps(payload))
        message = await socket.receive_json_from(timeout=5)
        assert (message["type"], message["code"]) == ("error", code)

    await refused(listener, {"type": "utterance", "text": "I speak"}, "wrong_role")
    await refused(listener, {"type": "toggle", "tangram": "page1-0"}, "not_your_turn")
    await refused(speaker, {"type": "utterance", "text": "y" * 301}, "too_long")
    await refused(speaker, "{not json", "bad_json")
    await refused(speaker, "[1, 2]", "bad_message")
    await refused(speaker, "x" * 9000, "too_large")
    await refused(speaker, {"type": "cheat", "game": 1}, "unknown_type")
    await speaker.send_json_to({"type": "utterance", "text": "ok", "game": 12345, "worker": 1})
    await next_state(listener, phase="listener", utterance="ok")
    await next_state(speaker, phase="listener")
    await refused(listener, {"type": "toggle", "tangram": "page5-5"}, "not_in_context")
    # Flooding: the bucket holds 20 messages and the listener has sent 3; with the limiter's clock
    # standing still, 17 of a burst of 40 toggles count and 23 are refused without effect.
    for _ in range(40):
        await listener.send_json_to({"type": "toggle", "tangram": "page1-1"})
    codes = []
    for _ in range(40):
        message = await listener.receive_json_from(timeout=5)
        codes.append(message.get("code", message["type"]))
    assert (codes.count("draft"), codes.count("flooding")) == (17, 23)
    limiter_time[0] += 10
    await listener.send_json_to({"type": "sync"})
    assert (await next_state(listener))["draft"] == ["page1-1"]
    toggles = await sync_to_async(GameEvent.objects.filter(game_id=game_id, kind="toggle").count)()
    assert toggles == 17
    refusals = await sync_to_async(
        lambda: list(
            GameEvent.objects.filter(game_id=game_id, kind="refused").values_list(
                "payload__code", flat=True
            )
        )
    )()
    assert refusals == [
        "wrong_role",
        "not_your_turn",
        "too_long",
        "bad_json",
        "bad_message",
        "too_large",
        "unknown_type",
        "not_in_context",
    ]
    assert "refused message from the listener" in caplog.text
    await speaker.disconnect()
    await listener.disconnect()


async def test_a_model_answer_reaches_the_speaker(clock):
    game_id, (speaker_cookie, _) = await setup_game(clock, system="B-FFT")
    path = f"/ws/play/game/{game_id}/"
    speaker = await connected(path, speaker_cookie)
    await next_state(speaker, partner="model")
    await speaker.send_json_to({"type": "utterance", "text": "the bird"})
    await next_state(speaker, phase="listener")
    await sync_to_async(record_model_action)(game_id, 0, "select B", 0.4)
    state = await next_state(speaker, phase="speaker", turn=1)
    assert state["selection"] == ["page1-8"]
    assert await speaker.receive_nothing(timeout=0.5)
    await speaker.disconnect()


async def lobby_page(round_id: int, cookie: str) -> int:
    """The lobby page's status, loaded through the project's ASGI application."""
    headers = [(b"host", b"localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    page = HttpCommunicator(application, "GET", f"/play/lobby/{round_id}/", headers=headers)
    return (await page.get_response(timeout=10))["status"]


@pytest.mark.postgresql("two sockets write the lobby at once, which locks SQLite's tables")
async def test_a_worker_is_paired_only_once_their_lobby_socket_listens(settings):
    """An overloaded lobby tells a socket to come back in a few seconds: a worker paired while
    their page waits to open it again would learn of the game late, perhaps after their first
    turn's time limit, and their partner would lose the game. The page alone pairs nobody."""
    round_ = await setup_round()
    first, second = await sync_to_async(
        lambda: (helpers.participant(round_, "a"), helpers.participant(round_, "b"))
    )()
    cookies = [await sync_to_async(helpers.session_cookie)(w) for w in (first, second)]
    for cookie in cookies:
        assert await lobby_page(round_.pk, cookie) == 200
    assert await sync_to_async(lobby.try_pair)(round_.pk) == []

    settings.PLAY_ARRIVALS_IN_PROGRESS = 0
    for cookie in cookies:
        told = await connected(f"/ws/play/lobby/{round_.pk}/", cookie)
        assert (await told.receive_json_from(timeout=5))["type"] == "busy"
        assert (await told.receive_output(timeout=5))["code"] == 4503
    assert await sync_to_async(lobby.try_pair)(round_.pk) == []

    settings.PLAY_ARRIVALS_IN_PROGRESS = 24
    lobby_a = await connected(f"/ws/play/lobby/{round_.pk}/", cookies[0])
    assert (await lobby_a.receive_json_from(timeout=5))["type"] == "waiting"
    assert await sync_to_async(lobby.try_pair)(round_.pk) == []
    lobby_b = await connected(f"/ws/play/lobby/{round_.pk}/", cookies[1])
    answers = [await lobby_b.receive_json_from(timeout=5)]
    if answers[0]["type"] == "waiting":
        answers.append(await lobby_b.receive_json_from(timeout=5))
    paired_a = await lobby_a.receive_json_from(timeout=5)
    assert paired_a["type"] == answers[-1]["type"] == "paired"
    assert paired_a["game"] == answers[-1]["game"]
    await lobby_a.disconnect()
    await lobby_b.disconnect()
