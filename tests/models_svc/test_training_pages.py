"""The researcher's training pages: launch, follow, cancel, open the next round, lineage."""

from __future__ import annotations

import pytest

from models_svc.models import TrainingRun
from models_svc.services import decode_study
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


def letters_study():
    system = make_system(make_study("pages"), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(3):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    return system.round.study


@pytest.fixture(autouse=True)
def _no_seed_set(settings):
    """The letters study has no human–human games, so no D₀ to rehearse."""
    settings.TRAINING = {"rehearse_seed_set": False}


def test_launching_from_the_page_queues_a_run_and_shows_its_progress(
    researcher_client, tmp_path, django_capture_on_commit_callbacks
):
    study = letters_study()
    page = researcher_client.get(f"/models/studies/{study.pk}/training/")
    assert page.status_code == 200
    assert b"Open round 1 with the trained policies" in page.content
    assert b"No training run yet" in page.content
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = researcher_client.post(
            f"/models/studies/{study.pk}/training/launch/",
            {"round_index": 0, "system_name": "B-FFT", "base": f"hf:{tmp_path}", "epochs": 2},
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == f"/models/training/{run.pk}/"
    assert len(queued) == 1  # sent to the gpu-batch queue when the transaction commits
    assert run.hyperparameters["epochs"] == 2 and run.hyperparameters["seeds"] == 3
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running",
        epoch=2,
        history=[
            {"seed": 0, "epoch": 0, "loss": 2.0, "exact_match": 0.1},
            {"seed": 0, "epoch": 1, "loss": 1.0, "exact_match": 0.5},
        ],
    )
    detail = researcher_client.get(f"/models/training/{run.pk}/").content.decode()
    assert 'http-equiv="refresh"' in detail
    # plot area y 36..184: loss 2.0 tops the left axis (36), 1.0 and exact match 0.5 are half
    # way (110), exact match 0.1 is 184 − 0.1 × 148 = 169.2.
    assert 'points="36.0,36.0 524.0,110.0"' in detail
    assert 'points="36.0,169.2 524.0,110.0"' in detail
    progress = researcher_client.get(f"/models/training/{run.pk}/progress/").json()
    assert progress["status"] == "running" and len(progress["history"]) == 2
    researcher_client.post(f"/models/training/{run.pk}/cancel/")
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested


def test_refusals_are_shown_on_the_page_and_create_nothing(researcher_client):
    study = letters_study()
    response = researcher_client.post(
        f"/models/studies/{study.pk}/training/launch/",
        {"round_index": 0, "system_name": "B-FFT"},
        follow=True,
    )
    assert "Not launched: system B-FFT (round 0) acts with policy" in response.content.decode()
    response = researcher_client.post(
        f"/models/studies/{study.pk}/rounds/open/", {"from_round": 0}, follow=True
    )
    assert "Round not opened: cannot open round 1: train first: no finished run" in (
        response.content.decode()
    )
    assert not TrainingRun.objects.exists()
    assert study.rounds.count() == 1


def test_pages_are_for_researchers_only(client):
    study = letters_study()
    client.force_login(make_user("walter"))
    assert client.get(f"/models/studies/{study.pk}/training/").status_code == 403


def test_a_stale_run_can_be_resumed_from_its_page(
    researcher_client, tmp_path, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    study = letters_study()
    researcher_client.post(
        f"/models/studies/{study.pk}/training/launch/",
        {"round_index": 0, "system_name": "B-FFT", "base": f"hf:{tmp_path}"},
    )
    run = TrainingRun.objects.get()
    TrainingRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    refused = researcher_client.post(f"/models/training/{run.pk}/resume/", follow=True)
    assert "not stale: nothing to do" in refused.content.decode()
    silent = timezone.now() - timedelta(hours=1)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=silent)
    page = researcher_client.get(f"/models/training/{run.pk}/").content.decode()
    assert "Resume on a gpu worker" in page
    with django_capture_on_commit_callbacks(execute=False) as queued:
        researcher_client.post(f"/models/training/{run.pk}/resume/")
    assert len(queued) == 1
    resumed = TrainingRun.objects.get(pk=run.pk)
    assert (resumed.status, resumed.lease) == ("queued", "") and resumed.queued_at > silent
