"""Websocket messages nested too deeply are refused like bad JSON and the game goes on."""

from __future__ import annotations

import json

import pytest

from tests.play.test_consumers import connected, next_state, setup_game

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_deeply_nested_message_is_bad_json_and_harmless(clock):
    game_id, (speaker_cookie, listener_cookie) = await setup_game(clock)
    path = f"/ws/play/game/{game_id}/"
    speaker = await connected(path, speaker_cookie)
    listener = await connected(path, listener_cookie)
    await next_state(speaker)
    await next_state(listener)
    nested_text = '{"type": "utterance", "text": ' + "[" * 3000 + "]" * 3000 + "}"
    for payload in ("[" * 4000 + "]" * 4000, nested_text):
        await speaker.send_to(text_data=payload)
        message = await speaker.receive_json_from(timeout=5)
        assert message == {
            "type": "error",
            "code": "bad_json",
            "message": "the message is not JSON",
        }
    await speaker.send_to(text_data=json.dumps({"type": "utterance", "text": "still here"}))
    await next_state(listener, phase="listener", utterance="still here")
    await speaker.disconnect()
    await listener.disconnect()
