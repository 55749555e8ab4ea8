"""Simulated studies through a real worker: deterministic, resumable, decoder truth per row."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from sklearn.metrics import precision_score, recall_score

from games.models import FeedbackLabel, Game, Study

pytestmark = pytest.mark.celery


def simulate(name: str, *options: str) -> dict:
    out = io.StringIO()
    call_command(
        "simulate_study",
        "--name",
        name,
        "--policy",
        "random:toggle",
        "--no-worker",
        "--json",
        "--concurrency",
        "4",
        *options,
        stdout=out,
        stderr=io.StringIO(),
    )
    return json.loads(out.getvalue())


def transcript(study_name: str) -> list[tuple]:
    games = Game.objects.filter(study__name=study_name).order_by("external_id")
    return [
        (game.external_id, game.outcome, [(t.utterance, t.action) for t in game.turns.all()])
        for game in games
    ]


def test_same_seed_same_study_and_rows_per_round_and_system(celery_worker, settings):
    settings.PLAY_DEADLINE_TASKS = False
    options = ("--rounds", "1", "--games-per-system", "3", "--speakers", "letters", "--seed", "7")
    first = simulate("sim-a", *options)
    second = simulate("sim-b", *options)
    assert Study.objects.get(name="sim-a").simulated
    assert transcript("sim-a") == transcript("sim-b")
    assert first["rows"] == second["rows"]
    assert [(r["round"], r["system"], r["games"]) for r in first["rows"]] == [
        (0, "B-FFT", 3),
        (0, "CONTROL", 3),
    ]
    for row in first["rows"]:
        assert set(row) >= {"success_rate", "turns_per_game", "click_accuracy", "decoder"}
        assert row["training_examples"] is None  # one round: nothing trained
    truth, predicted = [], []
    games = Game.objects.filter(study__name="sim-a", system__name="B-FFT")
    for game in games:
        satisfied = game.metadata["simulation"]["satisfied"]
        for label in FeedbackLabel.objects.filter(turn__game=game, kind="binary"):
            truth.append(satisfied[label.turn.index])
            predicted.append(label.label == "positive")
    decoder = first["rows"][0]["decoder"]
    assert decoder["labelled"] == len(truth) > 0
    # undefined (no satisfied turn, or no positive label) is None, not a made-up 0
    assert any(truth) and any(predicted)  # a toggling listener makes some turns good
    recall = recall_score(truth, predicted) if any(truth) else None
    precision = precision_score(truth, predicted) if any(predicted) else None
    assert decoder["recall"] == pytest.approx(recall)
    assert decoder["precision"] == pytest.approx(precision)
    again = simulate("sim-a", *options)  # resuming a finished study plays nothing more
    assert again["rows"] == first["rows"]
    with pytest.raises(Exception, match="was started with another plan"):
        simulate("sim-a", "--rounds", "1", "--games-per-system", "5")


def test_dashboard_marks_a_simulated_study_and_plans_its_cost(celery_worker, settings, client):
    from tests.factories import make_user

    settings.PLAY_DEADLINE_TASKS = False
    simulate("sim-dash", "--rounds", "1", "--games-per-system", "3", "--speakers", "letters")
    study = Study.objects.get(name="sim-dash")
    client.force_login(make_user("rhea", role="researcher"))
    page = client.get(f"/evaluation/study/{study.pk}/").content.decode()
    assert 'id="simulated-badge"' in page and "scripted speakers" in page
    assert 'id="simulation-decoder"' in page
    assert "<td>0</td><td>B-FFT</td><td>CONTROL</td>" in page
    out = io.StringIO()
    call_command(
        "compute_metrics",
        "--study",
        "sim-dash",
        "--json",
        "--power",
        "--resamples",
        "200",
        stdout=out,
    )
    power = json.loads(out.getvalue())["power"]
    assert [(p["round"], p["system"], p["compared_with"]) for p in power] == [
        (0, "B-FFT", "CONTROL")
    ]
    assert power[0]["observed_games"] == [3, 3]


@pytest.mark.ml
def test_learning_shows_b_fft_rises_over_three_rounds_and_control_stays(
    celery_worker, settings, tmp_path
):
    """Letters speakers, a tiny random policy, oracle human listeners as D₀: the loop (play →
    decode → train → next round) must make B-FFT succeed more, with non-overlapping intervals."""
    from models_svc.registry import clear_cache
    from models_svc.tiny_models import learnable_tiny_idefics2

    settings.PLAY_DEADLINE_TASKS = False
    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    clear_cache()
    policy = learnable_tiny_idefics2(tmp_path / "tiny")
    out = io.StringIO()
    call_command(
        "simulate_study",
        *("--name", "learning", "--policy", f"hf:{policy}", "--no-worker", "--json"),
        *("--rounds", "3", "--games-per-system", "30", "--systems", "B-FFT,CONTROL,HH"),
        *("--speakers", "letters", "--context-size", "5", "--targets", "2-3"),
        *("--epochs", "8", "--training-preset", "tiny", "--concurrency", "4"),
        stdout=out,
        stderr=io.StringIO(),
    )
    rows = {(r["round"], r["system"]): r for r in json.loads(out.getvalue())["rows"]}
    first, last = rows[(0, "B-FFT")]["success_rate"], rows[(2, "B-FFT")]["success_rate"]
    assert last["value"] > first["value"] and last["ci"][0] > first["ci"][1], (first, last)
    control = rows[(0, "CONTROL")]["success_rate"], rows[(2, "CONTROL")]["success_rate"]
    assert control[1]["ci"][0] <= control[0]["ci"][1], control  # CONTROL's intervals overlap
    assert rows[(0, "B-FFT")]["training_examples"] > 0 and rows[(1, "B-FFT")]["training_examples"]


@pytest.mark.django_db
def test_population_parameters_are_checked_before_anything_is_created():
    from django.core.management.base import CommandError

    base = ("simulate_study", "--name", "bad", "--policy", "random", "--no-worker")
    with pytest.raises(CommandError, match="unknown speaker parameter"):
        call_command(*base, "--population", '{"wings": 1}')
    with pytest.raises(CommandError, match="approve is a probability"):
        call_command(*base, "--population", '{"approve": 2}')
    with pytest.raises(CommandError, match="--population is not JSON"):
        call_command(*base, "--population", "{approve")
    assert not Study.objects.filter(name="bad").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--rounds", "-1"), "--rounds: must be at least 1, not -1"),
        (("--games-per-system", "-5"), "--games-per-system: must be at least 1, not -5"),
        (
            ("--set", "epochs=-3"),
            "--epochs/--training-seeds/--set: epochs, seeds and effective_batch must be at least 1",
        ),
        (("--epochs", "0"), "--epochs/--training-seeds/--set: epochs, seeds and"),
        (("--targets", "4-2"), "--targets: 4-2 must satisfy 1 ≤ MIN ≤ MAX ≤ --context-size (10)"),
    ],
)
def test_arguments_are_refused_before_anything_is_written(options, message):
    from django.core.management.base import CommandError

    from games.models import Tangram

    base = ("simulate_study", "--name", "bad", "--policy", "random", "--no-worker")
    with pytest.raises(CommandError) as refused:
        call_command(*base, *options)
    assert str(refused.value).startswith(message)
    assert not Study.objects.exists()
    assert not Tangram.objects.exists()
