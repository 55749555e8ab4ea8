"""p_t recomputed for imported turns: exactly the policy's probability, marked, idempotent."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from games.models import Turn
from models_svc.registry import clear_cache, get_policy
from models_svc.scoring import EMPTY_ACTION_NOTE
from models_svc.selectors import policy_input_for_turn
from tests.factories import make_game, make_study, make_system

pytestmark = [pytest.mark.django_db, pytest.mark.ml]


def imported_games():
    system = make_system(make_study("imported"), 0, "B-FFT")
    make_game(system, [["page9-9"], ["page9-9"], ["page9-8"]], ["the bird", "hm", "the other"])
    human = make_system(system.round.study, 0, "HH")
    make_game(human, [["page9-9"]], ["the bird"])
    return system


def test_score_turns_stores_the_policys_probability_and_a_reason_for_empty_actions(
    settings, tiny_idefics2, tangram_images, capsys
):
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    clear_cache()
    system = imported_games()
    spec = f"hf:{tiny_idefics2}"
    call_command("score_turns", "--study", "imported", "--policy", spec, "--here")
    assert "scored 2 of 3 turns" in capsys.readouterr().out
    turns = {t.index: t for t in Turn.objects.filter(game__system=system)}
    policy = get_policy(spec, prompt_format="respect-2024")
    for index in (0, 2):
        item = policy_input_for_turn(turns[index].game_id, index)
        expected = policy.score(item, turns[index].action)
        assert turns[index].action_probability == pytest.approx(expected, rel=1e-6)
        assert turns[index].probability_recomputed_by == policy.version
        # recomputed under the scoring policy's setting, which training then reproduces
        assert (turns[index].sampling_temperature, turns[index].sampling_constrained) == (
            1.0,
            True,
        )
    assert turns[1].action == "" and turns[1].action_probability is None
    assert turns[1].probability_note == EMPTY_ACTION_NOTE
    human_turn = Turn.objects.get(game__system__name="HH")
    assert human_turn.action_probability is None and human_turn.probability_note == ""
    call_command("score_turns", "--study", "imported", "--policy", spec, "--here")
    assert "scored 0 of 0 turns" in capsys.readouterr().out


def test_score_turns_fails_without_images_instead_of_recording_reasons(settings, tiny_idefics2):
    settings.TANGRAM_DIR = ""
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    imported_games()
    with pytest.raises(CommandError, match="no image file for tangram"):
        call_command(
            "score_turns", "--study", "imported", "--policy", f"hf:{tiny_idefics2}", "--here"
        )
    assert not Turn.objects.exclude(probability_note="").exists()


def test_score_turns_refuses_a_policy_without_weights():
    imported_games()
    with pytest.raises(CommandError, match="needs an hf:PATH"):
        call_command("score_turns", "--study", "imported", "--policy", "random")
