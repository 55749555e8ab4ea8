"""One rule refuses a training launch, whichever entry point asks (the round board, the Training
page, ``train_policy``), and they all show its reason; the Training page greys out "Open round
N" with the board's reason and posts the board's launch form (preset included). Pages catch only
the application's refusals: a programming error is a 500, not "Not launched: ..."."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from config.errors import ApplicationError
from evaluation.board.selectors import round_board
from games.models import Round
from models_svc.models import TrainingRun
from models_svc.services import decode_study
from models_svc.training import runs
from tests.factories import make_game, make_study, make_system, make_user


@pytest.fixture(autouse=True)
def _no_seed_set(settings):
    """These studies have no human–human games, hence no D₀ to rehearse."""
    settings.TRAINING = {"rehearse_seed_set": False}


pytestmark = pytest.mark.django_db

PICKS = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
UTTERANCES = ["pick A", "good, now B", "yes, then I"]


@pytest.fixture
def researcher_client(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


def two_rounds(rounds: int = 2):
    """Round 0 decoded; round 1 (the same system) with games not decoded yet."""
    study = make_study("refusals")
    for index in range(rounds):
        system = make_system(study, index, "B-FFT")
        for _ in range(2):
            make_game(system, PICKS, UTTERANCES)
    decode_study(study, decoder_spec="lexicon", kind="binary", round_index=0)
    return study


def board_reason(study, index: int) -> str:
    round_ = Round.objects.select_related("study").get(study=study, index=index)
    return round_board(round_, is_last=True).train.targets[0].blocked


def launch_from_page(client, study, index: int, base: str):
    return client.post(
        f"/models/studies/{study.pk}/training/launch/",
        {"round_index": index, "system_name": "B-FFT", "base": base, "preset": "tiny"},
        follow=True,
    )


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_every_entry_point_refuses_an_undecoded_earlier_round_with_the_boards_reason(
    researcher_client, tmp_path
):
    study = two_rounds()
    reason = board_reason(study, 1)
    assert reason == "decode first: 0 of 4 turns labelled (binary, lexicon)"
    page = launch_from_page(researcher_client, study, 1, f"hf:{tmp_path}")
    assert page_messages(page) == [f"Not launched: {reason}"]
    with pytest.raises(CommandError, match=re.escape(f"round_index: {reason}")):
        call_command(
            "train_policy", study="refusals", round_index=1, system_name="B-FFT",
            base=f"hf:{tmp_path}",
        )  # fmt: skip
    training = researcher_client.get(f"/models/studies/{study.pk}/training/").content.decode()
    assert f"Waiting: {reason}." in training
    assert not TrainingRun.objects.exists()


def test_a_second_run_for_the_same_system_and_round_is_refused_on_every_page(
    researcher_client, tmp_path, django_capture_on_commit_callbacks
):
    study = two_rounds()
    with django_capture_on_commit_callbacks(execute=False):
        first = launch_from_page(researcher_client, study, 0, f"hf:{tmp_path}")
    run = TrainingRun.objects.get()
    assert page_messages(first) == [f"Training run {run.pk} queued on the gpu-batch queue."]
    assert run.hyperparameters["learning_rate"] == 5e-3  # the tiny preset, from the page
    reason = f"run #{run.pk} is under way (epoch 0, step 0/0)"
    assert board_reason(study, 0) == reason
    again = launch_from_page(researcher_client, study, 0, f"hf:{tmp_path}")
    assert page_messages(again) == [f"Not launched: {reason}"]
    board = researcher_client.post(
        f"/studies/{study.pk}/board/train/",
        {"round_index": 0, "system_name": "B-FFT", "base": f"hf:{tmp_path}", "preset": "tiny"},
        follow=True,
    )
    assert page_messages(board) == [f"Not launched: {reason}"]
    assert TrainingRun.objects.count() == 1


def test_the_training_page_opens_the_next_round_by_the_boards_rule_and_offers_the_presets(
    researcher_client,
):
    study = two_rounds(rounds=1)
    board = round_board(Round.objects.select_related("study").get(study=study), is_last=True)
    assert board.next_round.blocked == "train first: no finished run for B-FFT"
    page = researcher_client.get(f"/models/studies/{study.pk}/training/").content.decode()
    assert re.search(r'<button type="submit" class="next-round" disabled>Open round 1', page)
    assert "Waiting: train first: no finished run for B-FFT." in page
    assert (
        '<option value="tiny">tiny (1 epoch × 1 seed; for a tiny test checkpoint: minutes on a CPU)'
        in page
    )
    assert "tiny suits a CPU (minutes)" in page


def test_a_programming_error_is_a_500_and_a_refusal_is_a_message(
    researcher_client, monkeypatch, tmp_path
):
    study = two_rounds()

    def bug(*args, **kwargs):
        raise ValueError("a bug, not a refusal")

    monkeypatch.setattr(runs, "launch_training_run", bug)
    client = Client(raise_request_exception=False)
    client.force_login(make_user("ruth", role="researcher"))
    for url in (
        f"/models/studies/{study.pk}/training/launch/",
        f"/studies/{study.pk}/board/train/",
    ):
        response = client.post(url, {"round_index": 0, "system_name": "B-FFT", "base": ""})
        assert response.status_code == 500, url

    def refusal(*args, **kwargs):
        raise ApplicationError("the service says no", field="base")

    monkeypatch.setattr(runs, "launch_training_run", refusal)
    page = launch_from_page(researcher_client, study, 0, f"hf:{tmp_path}")
    assert page_messages(page) == ["Not launched: the service says no"]


def test_the_api_launches_with_the_same_form_and_refuses_with_the_same_reason(
    tmp_path, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    study = two_rounds()
    api = APIClient()
    api.force_authenticate(make_user("rhea", role="researcher"))
    url = f"/models/api/studies/{study.pk}/training-runs/"
    body = {"round_index": 1, "system_name": "B-FFT", "base": f"hf:{tmp_path}", "preset": "tiny"}
    refused = api.post(url, body, format="json")
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": board_reason(study, 1), "field": "round_index"},
    )
    bad = api.post(url, {**body, "preset": "huge", "round_index": 10**9}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"preset", "round_index"}
    with django_capture_on_commit_callbacks(execute=False) as sent:
        launched = api.post(url, {**body, "round_index": 0}, format="json")
    run = TrainingRun.objects.get()
    assert (launched.status_code, launched.json()["id"], launched.json()["status"]) == (
        202,
        run.pk,
        "queued",
    )
    assert len(sent) == 1 and run.hyperparameters["learning_rate"] == 5e-3
    assert api.get(f"/models/api/training-runs/{run.pk}/").json()["system_name"] == "B-FFT"
