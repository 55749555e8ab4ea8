"""The round board's buttons: each posts to its view, which refuses what the board shows as
disabled and otherwise launches the step (decoding on a real Celery worker)."""

from __future__ import annotations

import time

import pytest

from evaluation.models import MetricRun
from games.models import FeedbackLabel, Round
from models_svc.models import DecodeRun, TrainingRun
from models_svc.services import decode_study
from tests.factories import make_game, make_study, make_system, make_user

from .builders import finish_run, letters_round

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def board_post(client, round_: Round, action: str, data: dict):
    return client.post(
        f"/studies/{round_.study_id}/board/{action}/",
        {"round_index": round_.index, **data},
        follow=True,
    )


def test_the_lobby_button_closes_and_opens_the_round(researcher):
    round_ = make_system(make_study("lobby"), 0, "B-FFT").round
    Round.objects.filter(pk=round_.pk).update(lobby_open=True)
    response = board_post(researcher, round_, "lobby", {"open": "0"})
    assert response.redirect_chain == [(f"/studies/{round_.study_id}/board/#round-0", 302)]
    assert messages_of(response) == ["Round 0: the lobby is closed."]
    assert Round.objects.get(pk=round_.pk).lobby_open is False
    again = board_post(researcher, round_, "lobby", {"open": "0"})
    assert messages_of(again) == ["Round 0: the lobby is already closed."]
    assert "The lobby is <strong>closed</strong>" in again.content.decode()
    opened = board_post(researcher, round_, "lobby", {"open": "1"})
    assert messages_of(opened) == ["Round 0: the lobby is open: workers arriving are paired."]
    assert Round.objects.get(pk=round_.pk).lobby_open is True


@pytest.mark.celery
def test_decoding_launched_from_the_board_runs_on_the_worker(celery_worker, client):
    client.force_login(make_user("rita", role="researcher"))
    round_ = letters_round("decode")
    response = board_post(client, round_, "decode", {"decoder": " lexicon ", "kind": "binary"})
    run = DecodeRun.objects.get()
    assert messages_of(response) == [
        f"Decoding run {run.pk} queued on the gpu-batch queue (binary, lexicon, round 0)."
    ]
    assert (run.round_index, run.decoder, run.kind, run.requested_by.username) == (
        0,
        "lexicon",
        "binary",
        "rita",
    )
    deadline = time.monotonic() + 90
    while DecodeRun.objects.get(pk=run.pk).status != "done":
        assert time.monotonic() < deadline, "the worker did not finish the decoding run"
        time.sleep(0.2)
    run.refresh_from_db()
    assert (run.total, run.done, run.created, run.error) == (4, 4, 4, "")
    labels = FeedbackLabel.objects.filter(decoder="lexicon", kind="binary")
    assert sorted(labels.values_list("label", flat=True)) == ["positive"] * 4
    page = client.get(f"/studies/{round_.study_id}/board/").content.decode()
    assert '<td class="num coverage">4 of 4</td>' in page
    assert '<td class="num">4/4</td><td class="num">4</td>' in page


def test_a_second_request_gets_the_run_under_way(researcher, django_capture_on_commit_callbacks):
    round_ = letters_round("twice")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        board_post(researcher, round_, "decode", {"decoder": "lexicon", "kind": "ternary"})
        again = board_post(researcher, round_, "decode", {"decoder": "lexicon", "kind": "ternary"})
    run = DecodeRun.objects.get()
    assert len(queued) == 1
    assert messages_of(again) == [f"Decoding run {run.pk} is already doing this (queued)."]
    assert "is queued:\n      0 of 0 turns." in again.content.decode()
    assert "data-board-refresh" in again.content.decode()  # the page follows the run


def test_bad_decoding_requests_are_refused_by_name(researcher):
    round_ = letters_round("refused")
    bad = board_post(researcher, round_, "decode", {"decoder": "hf:", "kind": "binary"})
    assert messages_of(bad)[0].startswith("Not decoded: decoder: ")
    kind = board_post(researcher, round_, "decode", {"decoder": "lexicon", "kind": "quaternary"})
    assert messages_of(kind) == [
        "Nothing done: kind: Select a valid choice. quaternary is not one of the available choices."
    ]
    empty = make_system(make_study("no games"), 0, "B-FFT").round
    nothing = board_post(researcher, empty, "decode", {"decoder": "lexicon", "kind": "binary"})
    assert messages_of(nothing) == ["Not decoded: collect games first: the round has no games"]
    missing = researcher.post(
        f"/studies/{round_.study_id}/board/decode/",
        {"round_index": 7, "decoder": "lexicon", "kind": "binary"},
    )
    assert missing.status_code == 404
    assert not DecodeRun.objects.exists()


def test_metrics_start_from_the_board_once(researcher, django_capture_on_commit_callbacks):
    round_ = letters_round("metrics")
    form = {"resamples": 200, "seed": 0, "confidence": "0.95", "conventions": "platform"}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = board_post(researcher, round_, "metrics", form)
    run = MetricRun.objects.get()
    assert messages_of(started) == [f"Metric run {run.pk} started."]
    assert (run.resamples, run.conventions, run.status, len(queued)) == (
        200,
        "platform",
        "queued",
        1,
    )
    again = board_post(researcher, round_, "metrics", form)
    assert messages_of(again) == [
        f"Metric run not started: metric run {run.pk} is under way (0%: waiting for a worker)"
    ]
    bad = board_post(researcher, round_, "metrics", {**form, "resamples": 5})
    assert messages_of(bad)[0].startswith("Metric run not started: resamples: ")
    assert MetricRun.objects.count() == 1


def test_training_launches_with_the_preset_once_decoded(
    researcher, tmp_path, django_capture_on_commit_callbacks, settings
):
    settings.TRAINING = {"rehearse_seed_set": False}  # the letters study has no D₀
    round_ = letters_round("train")
    form = {"system_name": "B-FFT", "base": f"hf:{tmp_path}", "preset": "tiny", "epochs": 2}
    early = board_post(researcher, round_, "train", form)
    assert messages_of(early) == [
        "Not launched: decode first: 0 of 4 turns labelled (binary, lexicon)"
    ]
    unknown = board_post(researcher, round_, "train", {**form, "system_name": "CONTROL"})
    assert messages_of(unknown) == [
        "Not launched: round 0 has no model system 'CONTROL' to train (HH has human listeners; "
        "CONTROL is redeployed unchanged)"
    ]
    assert not TrainingRun.objects.exists()

    decode_study(round_.study, decoder_spec="lexicon", kind="binary")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        launched = board_post(researcher, round_, "train", form)
    run = TrainingRun.objects.get()
    assert messages_of(launched) == [
        f"Training run {run.pk} (filtered fine-tuning, B-FFT) queued on the gpu-batch queue."
    ]
    assert len(queued) == 1
    assert run.base_checkpoint == f"hf:{tmp_path}"
    assert (run.hyperparameters["epochs"], run.hyperparameters["learning_rate"]) == (2, 5e-3)
    assert run.hyperparameters["lora_r"] == 32 and run.requested_by.username == "rita"
    busy = board_post(researcher, round_, "train", form)
    assert messages_of(busy) == [f"Not launched: run #{run.pk} is under way (epoch 0, step 0/0)"]
    assert TrainingRun.objects.count() == 1


def test_the_next_round_opens_once_every_system_is_trained(researcher):
    round_ = letters_round("next")
    refused = board_post(researcher, round_, "next-round", {})
    assert messages_of(refused)[0].startswith(
        "Round not opened: cannot open round 1: train first: no finished run for B-FFT"
    )
    finish_run(round_, "B-FFT", adapter="/runs/7/adapter")
    opened = board_post(researcher, round_, "next-round", {})
    assert opened.redirect_chain == [(f"/studies/{round_.study_id}/board/#round-1", 302)]
    assert messages_of(opened) == ["Round 1 opened with the trained policies (B-FFT, CONTROL)."]
    new = Round.objects.get(study=round_.study, index=1)
    assert new.systems.get(name="B-FFT").policy_checkpoint == "hf:/models/base+lora:/runs/7/adapter"
    page = opened.content.decode()
    assert page.index('id="round-1"') < page.index('id="round-0"')
    assert "Round 1 is open" in page


@pytest.mark.celery
def test_closing_the_lobby_decodes_the_systems_that_ask_for_it(celery_worker, client):
    client.force_login(make_user("rita", role="researcher"))
    round_ = letters_round("auto")
    Round.objects.filter(pk=round_.pk).update(lobby_open=True)
    make_system(round_.study, 0, "LISTENER")
    for name in ("B-FFT", "LISTENER"):
        switched = board_post(client, round_, "auto-decode", {"system_name": name, "enabled": "1"})
        assert messages_of(switched) == [f"{name}: round 0 will be decoded when its lobby closes."]
    assert 'class="ok small">yes</span>' in switched.content.decode()
    closed = board_post(client, round_, "lobby", {"open": "0"})
    run = DecodeRun.objects.get()
    assert messages_of(closed) == [
        "Round 0: the lobby is closed.",
        f"Decoding run {run.pk} (binary, lexicon) queued, as asked.",
        "LISTENER is not decoded automatically: cannot tell the feedback kind of system "
        "'LISTENER': name it B-… (binary decoder) or T-… (ternary decoder)",
    ]
    deadline = time.monotonic() + 90
    while DecodeRun.objects.get(pk=run.pk).status != "done":
        assert time.monotonic() < deadline, "the worker did not finish the decoding run"
        time.sleep(0.2)
    assert FeedbackLabel.objects.filter(decoder="lexicon", kind="binary").count() == 4
    again = board_post(client, round_, "lobby", {"open": "0"})
    assert messages_of(again) == ["Round 0: the lobby is already closed."]
    board_post(client, round_, "lobby", {"open": "1"})
    assert DecodeRun.objects.count() == 1


def test_automatic_decoding_is_off_until_turned_on(researcher):
    round_ = letters_round("manual")
    Round.objects.filter(pk=round_.pk).update(lobby_open=True)
    closed = board_post(researcher, round_, "lobby", {"open": "0"})
    assert messages_of(closed) == ["Round 0: the lobby is closed."]
    assert not DecodeRun.objects.exists()
    human = board_post(researcher, round_, "auto-decode", {"system_name": "HH", "enabled": "1"})
    assert messages_of(human) == ["Round 0 has no model system 'HH'."]


def test_the_next_round_deploys_the_best_run_or_the_one_picked_on_the_board(researcher):
    round_ = letters_round("best")
    best = finish_run(round_, "B-FFT", adapter="/runs/best/adapter")
    newest = finish_run(round_, "B-FFT", adapter="/runs/newest/adapter")
    TrainingRun.objects.filter(pk=best.pk).update(selected={"exact_match": 0.083, "loss": 2.0})
    TrainingRun.objects.filter(pk=newest.pk).update(selected={"exact_match": 0.0, "loss": 1.0})
    page = researcher.get(f"/studies/{round_.study_id}/board/").content.decode()
    assert (
        f'<select name="run-B-FFT"><option value="{best.pk}">run #{best.pk}: exact match 0.083 '
        f'(best)</option><option value="{newest.pk}">run #{newest.pk}: exact match 0.000</option>'
    ) in page
    foreign = board_post(researcher, round_, "next-round", {"run-B-FFT": "999999"})
    assert messages_of(foreign) == [
        "Round not opened: run #999999 is not a finished training run of B-FFT in round 0"
    ]
    picked = board_post(researcher, round_, "next-round", {"run-B-FFT": str(newest.pk)})
    assert messages_of(picked) == ["Round 1 opened with the trained policies (B-FFT, CONTROL)."]
    deployed = Round.objects.get(study=round_.study, index=1).systems.get(name="B-FFT")
    assert deployed.policy_checkpoint == "hf:/models/base+lora:/runs/newest/adapter"


def test_without_a_pick_the_next_round_deploys_the_best_run_by_exact_match(researcher):
    round_ = letters_round("default-best")
    best = finish_run(round_, "B-FFT", adapter="/runs/best/adapter")
    newest = finish_run(round_, "B-FFT", adapter="/runs/newest/adapter")
    TrainingRun.objects.filter(pk=best.pk).update(selected={"exact_match": 0.083, "loss": 2.0})
    TrainingRun.objects.filter(pk=newest.pk).update(selected={"exact_match": 0.0, "loss": 1.0})
    board_post(researcher, round_, "next-round", {})
    deployed = Round.objects.get(study=round_.study, index=1).systems.get(name="B-FFT")
    assert deployed.policy_checkpoint == "hf:/models/base+lora:/runs/best/adapter"


def test_one_button_decodes_every_round_a_system_learns_from(researcher):
    from .builders import PICKS, UTTERANCES

    round_zero = letters_round("lineage")
    system = make_system(round_zero.study, 1, "B-FFT")
    make_game(system, PICKS, UTTERANCES)
    round_one = system.round
    page = researcher.get(f"/studies/{round_one.study_id}/board/").content.decode()
    assert "Decode every round B-FFT learns from</button>" in page
    assert "(rounds 0, 1 lack its labels)" in page
    queued = board_post(researcher, round_one, "decode-lineage", {"system_name": "B-FFT"})
    runs = list(DecodeRun.objects.order_by("round_index"))
    assert [(r.round_index, r.decoder, r.kind) for r in runs] == [
        (0, "lexicon", "binary"),
        (1, "lexicon", "binary"),
    ]
    assert messages_of(queued) == [
        f"Decoding run {runs[0].pk} of round 0 (binary, lexicon) queued on the gpu-batch queue.",
        f"Decoding run {runs[1].pk} of round 1 (binary, lexicon) queued on the gpu-batch queue.",
    ]
