"""render_prompt prints exactly the chat messages a policy is given, in the turn's format."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from games.models import Turn
from tests.factories import make_game, make_study, make_system

pytestmark = pytest.mark.django_db


def text(role: str, value: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": value}]}


def test_render_prompt_json_in_the_released_layout(capsys):
    system = make_system(make_study(), 0, "B-FFT")
    game = make_game(system, [["page9-9"], ["page9-8"]], ["the bird", "no, the other bird"])
    call_command("render_prompt", "--game", str(game.pk), "--turn", "1", "--json")
    document = json.loads(capsys.readouterr().out)
    images = []
    for letter in "ABCDEFGHIJ":
        images += [{"type": "image"}, {"type": "text", "text": letter}]
    assert document["format"] == "respect-2024"
    assert document["messages"] == [
        {"role": "system", "content": images},
        text("system", "none is selected"),
        text("user", "the bird"),
        text("assistant", "select A"),
        text("system", "A currently selected"),
        text("user", "no, the other bird"),
    ]
    assert document["target"] == "deselect A select B"


def test_render_prompt_uses_the_turns_own_format_unless_told(capsys):
    system = make_system(make_study(), 0, "B-FFT")
    game = make_game(system, [["page9-9"], ["page9-9"]], ["the bird", "good"])
    Turn.objects.filter(game=game, index=1).update(prompt_format="platform-p1")
    call_command("render_prompt", "--game", str(game.pk), "--turn", "1", "--json")
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "platform-p1"
    assert document["messages"][0]["content"][:2] == [
        {"type": "text", "text": "A "},
        {"type": "image"},
    ]
    assert document["messages"][3] == text("assistant", "Select A")
    assert document["target"] == "No change"
    call_command("render_prompt", "--game", str(game.pk), "--turn", "1", "--format", "respect-2024")
    plain = capsys.readouterr().out
    assert plain.endswith("User: good\nAssistant: nothing\n")
    with pytest.raises(CommandError, match="unknown prompt format 'idefics3'"):
        call_command("render_prompt", "--game", str(game.pk), "--turn", "1", "--format", "idefics3")
    with pytest.raises(CommandError, match="has no turn 5"):
        call_command("render_prompt", "--game", str(game.pk), "--turn", "5")
