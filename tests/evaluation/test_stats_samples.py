"""The stats functions reproduce tests/data/samples/README.md exactly (JSON and pickle)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.stats import interaction, language
from evaluation.stats.inputs import GroupInput, StudyInput
from evaluation.stats.study import compute_study

from .samples import README_FIGURES, game_arrays, load_json, load_pickle


@pytest.fixture(params=["json", "pickle"])
def games(request):
    return game_arrays(load_json() if request.param == "json" else load_pickle())


def test_interaction_figures(games):
    successful = np.array([g["successful"] for g in games])
    turns = np.array([len(g["utterances"]) for g in games])
    before = np.concatenate([g["before"] for g in games])
    after = np.concatenate([g["after"] for g in games])
    targets = np.concatenate([np.repeat(g["targets"][None], len(g["before"]), 0) for g in games])
    clicks, correct = interaction.click_counts(before, after, targets)

    assert len(games) == README_FIGURES["games"]
    assert successful.sum() == README_FIGURES["successful"]
    assert interaction.success_rate(successful) == README_FIGURES["success_rate"]
    assert turns.sum() == README_FIGURES["turns"]
    assert interaction.turns_per_game(turns) == README_FIGURES["turns_per_game"]
    assert (clicks.sum(), correct.sum()) == (178, 132)
    assert interaction.click_accuracy(before, after, targets) == 132 / 178


def test_language_figures(games):
    utterances = [u for g in games for u in g["utterances"]]
    assert round(language.mean_utterance_length(utterances), 3) == 5.321
    assert language.phrase_counts(utterances, language.RESET_PHRASES).sum() == 0
    assert language.phrase_counts(utterances, language.TRY_AGAIN_PHRASES).sum() == 35


def test_engine_reproduces_the_figures(games):
    group = GroupInput(
        round_index=0,
        system="B-FFT",
        successful=np.array([g["successful"] for g in games]),
        targets=np.array([g["targets"] for g in games]),
        context=np.arange(len(games) * 10).reshape(len(games), 10),
        turn_game=np.concatenate([np.full(len(g["before"]), i) for i, g in enumerate(games)]),
        before=np.concatenate([g["before"] for g in games]),
        after=np.concatenate([g["after"] for g in games]),
        utterances=[u for g in games for u in g["utterances"]],
    )
    row = compute_study(StudyInput("sample", [group]))["rows"][0]
    assert row["games"] == 24
    assert row["successful_games"] == 17
    assert row["success_rate"]["value"] == 17 / 24
    assert row["turns"] == 168
    assert row["turns_per_game"]["value"] == 7.0
    assert (row["clicks"], row["correct_clicks"]) == (178, 132)
    assert row["click_accuracy"]["value"] == 132 / 178
    assert round(row["utterance_length"]["value"], 3) == 5.321
    assert (row["reset_phrases"], row["try_again_phrases"]) == (0, 35)
    assert row["try_again_per_100"]["value"] == pytest.approx(100 * 35 / 168, abs=1e-12)
    for name in ("success_rate", "turns_per_game", "click_accuracy", "utterance_length"):
        low, high = row[name]["ci"]
        assert low <= row[name]["value"] <= high
