"""Decoding and scoring runs are claimed by one delivery, beat while they work, and a stale one
(its worker was killed) is queued again and finishes once, with nothing stored twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config import heartbeat
from games.models import FeedbackLabel, Turn
from models_svc.models import DecodeRun, ScoringRun, TrainingRun
from models_svc.registry import clear_cache
from models_svc.scoring import execute_scoring_run
from models_svc.services import decode_study, execute_decode_run
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = pytest.mark.django_db


def silence(model, pk: int) -> None:
    """The run's worker stopped: no heartbeat for longer than RUN_STALE_SECONDS."""
    silent = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)
    model.objects.filter(pk=pk).update(heartbeat_at=silent)


def three_games():
    system = make_system(make_study("beats"), 0, "B-FFT")
    for index in range(3):
        make_game(
            system,
            [["page9-9"], ["page9-8"]],
            ["the bird", "no, undo"],
            external_id=f"g{index}",
        )
    return system.round.study


def test_a_killed_decode_run_is_finished_once_with_each_label_stored_once():
    study = three_games()
    run = DecodeRun.objects.create(study=study, decoder="lexicon", kind="ternary")
    lease = heartbeat.claim(DecodeRun, run.pk, startable=[DecodeRun.Status.QUEUED])
    # the first worker stored the labels of one game, then was killed
    decode_study(study, decoder_spec="lexicon", kind="ternary", chunk_size=1)
    FeedbackLabel.objects.exclude(turn__game__external_id="g0").delete()
    heartbeat.beat(DecodeRun, run.pk, lease, done=1, total=3, created=1)
    # a second delivery while that worker still beats leaves the run alone
    held = execute_decode_run(run.pk)
    assert (held.status, held.done, held.attempts, held.lease) == ("running", 1, 1, lease)
    silence(DecodeRun, run.pk)
    done = execute_decode_run(run.pk)
    assert (done.status, done.total, done.done, done.created, done.attempts) == (
        "done",
        2,
        2,
        3,
        2,
    )
    assert done.heartbeat_at > done.started_at and done.lease == ""
    labels = FeedbackLabel.objects.filter(turn__game__study=study)
    assert sorted(labels.values_list("turn__game__external_id", "label")) == [
        ("g0", "negative"),
        ("g1", "negative"),
        ("g2", "negative"),
    ]
    with pytest.raises(heartbeat.LeaseLost):
        heartbeat.beat(DecodeRun, run.pk, lease, done=3)
    assert execute_decode_run(run.pk).attempts == 2  # a late redelivery does nothing


def test_a_stale_decode_run_can_be_restarted_from_the_admin(
    client, django_capture_on_commit_callbacks
):
    client.force_login(make_user("ada", role="admin"))
    run = DecodeRun.objects.create(study=three_games(), decoder="lexicon", kind="binary")
    lease = heartbeat.claim(DecodeRun, run.pk, startable=[DecodeRun.Status.QUEUED])
    restart = {"action": "restart_stale_runs", "_selected_action": [run.pk]}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post("/admin/models_svc/decoderun/", restart, follow=True)
    assert len(queued) == 0 and DecodeRun.objects.get(pk=run.pk).lease == lease
    silence(DecodeRun, run.pk)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = client.post("/admin/models_svc/decoderun/", restart, follow=True)
    assert len(queued) == 1
    assert "1 stale run(s) queued again" in page.content.decode()
    assert DecodeRun.objects.get(pk=run.pk).status == "queued"


@pytest.mark.ml
def test_a_killed_scoring_run_is_finished_once(settings, tiny_idefics2, tangram_images):
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    clear_cache()
    study = three_games()
    run = ScoringRun.objects.create(study=study, policy=f"hf:{tiny_idefics2}")
    heartbeat.claim(ScoringRun, run.pk, startable=[ScoringRun.Status.QUEUED])
    held = execute_scoring_run(run.pk)
    assert (held.status, held.done, held.attempts) == ("running", 0, 1)
    silence(ScoringRun, run.pk)
    done = execute_scoring_run(run.pk)
    assert (done.status, done.total, done.done, done.scored, done.attempts) == (
        "done",
        6,
        6,
        6,
        2,
    )
    assert Turn.objects.filter(game__study=study, action_probability__isnull=False).count() == 6


def test_a_delivery_leaves_a_training_run_alone_while_its_worker_beats(tmp_path):
    from models_svc.training.runs import execute_training_run, launch_training_run

    system = make_system(make_study("train-beats"), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(3):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    run = launch_training_run(
        system.round.study,
        0,
        "B-FFT",
        base=f"hf:{tmp_path}",
        overrides={"rehearse_seed_set": False},
    )
    lease = heartbeat.claim(TrainingRun, run.pk, startable=[TrainingRun.Status.QUEUED])
    # the broker hands the task out again (visibility timeout) while the first worker trains
    held = execute_training_run(run.pk)
    assert (held.status, held.attempts, held.resumed, held.lease) == ("running", 1, 0, lease)
    assert held.history == [] and held.error == ""
