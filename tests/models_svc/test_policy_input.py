"""What a listener policy is shown for a turn (read from the database, never the targets)."""

from __future__ import annotations

import pytest

from games.models import Game, GameConfig, Turn
from models_svc.interfaces import PastTurn
from models_svc.selectors import TurnNotReady, policy_input_for_turn
from tests.factories import make_game, make_study, make_system

pytestmark = pytest.mark.django_db


def _open_turn_game():
    """Turns 0 and 1 answered, turn 2 has an utterance and no answer yet."""
    system = make_system(make_study())
    game = make_game(
        system,
        [["page9-9"], ["page9-8"], ["page9-8", "page9-2"]],
        ["the bird", "no, the other bird", "now the house"],
    )
    game.status = Game.Status.PLAYING
    game.outcome = ""
    game.save()
    Turn.objects.filter(game=game, index=2).update(selection_after=None, action="")
    return game


def test_policy_input_letters_history_and_state():
    game = _open_turn_game()
    item = policy_input_for_turn(game.pk, 2)
    # listener order is page9-9 ... page9-0, so page9-9 is A and page9-8 is B.
    assert item.images == tuple(f"page9-{i}" for i in range(9, -1, -1))
    assert item.selection == ("B",)
    assert item.utterance == "now the house"
    assert item.history == (
        PastTurn(selection=(), utterance="the bird", action="select A"),
        PastTurn(selection=("A",), utterance="no, the other bird", action="deselect A select B"),
    )
    assert item.seed == f"{game.external_id}:{game.config.seed}:2"


def test_policy_input_does_not_depend_on_targets():
    game = _open_turn_game()
    before = policy_input_for_turn(game.pk, 2)
    GameConfig.objects.filter(pk=game.config_id).update(targets=["page9-5", "page9-6", "page9-7"])
    assert policy_input_for_turn(game.pk, 2) == before


def test_policy_input_for_missing_turn_is_not_ready():
    game = _open_turn_game()
    with pytest.raises(TurnNotReady, match="has no turn 3"):
        policy_input_for_turn(game.pk, 3)
