"""Fault drill: a whole Celery worker is SIGKILLed during a training run. Once the run is
stale, Resume queues it again; a new worker resumes it after the last complete epoch and it
finishes exactly once, while the killed worker's own delivery, handed out again by the broker,
does nothing. Real worker processes, real Redis broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from config import heartbeat
from models_svc.models import ModelCheckpoint, TrainingRun
from models_svc.services import decode_study
from models_svc.training.runs import launch_training_run, resume_training_run
from tests.factories import make_game, make_study, make_system
from tests.worker_processes import finished_tasks, kill, start_worker, stop, wait_for, worker_env

pytestmark = [
    pytest.mark.ml,
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql("worker processes share the test database"),
]

TASK = "models_svc.tasks.train_policy_run"


def run_row(run: TrainingRun) -> TrainingRun:
    return TrainingRun.objects.get(pk=run.pk)


def test_killed_worker_resumes_from_its_last_epoch(
    tiny_idefics2, tangram_images, tmp_path, settings
):
    system = make_system(make_study("resume"), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(6):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    settings.TRAINING_STALE_SECONDS = 3
    env = worker_env(
        TANGRAM_DIR=tangram_images[0].rsplit("/", 1)[0],
        RESPECT_TRAINING_DIR=str(tmp_path / "training"),
        RESPECT_MODEL_DEVICE="cpu",
        RESPECT_TRAINING_STALE_SECONDS="3",
        CELERY_VISIBILITY_TIMEOUT="2",
    )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker("gpu-batch", env, first_log)
    try:
        with transaction.atomic():
            run = launch_training_run(
                system.round.study,
                0,
                "B-FFT",
                base=f"hf:{tiny_idefics2}",
                overrides={
                    "epochs": 4,
                    "seeds": 1,
                    "effective_batch": 2,
                    "rehearse_seed_set": False,
                },
            )
        # in progress: the first epoch's checkpoint is written and recorded
        wait_for(lambda: run_row(run).epoch >= 1, 600, "the first epoch", first_log)
        kill(first)
    finally:
        kill(first)
    state = tmp_path / "training" / f"run-{run.folder}" / "seed-0" / "epoch-0" / "trainer_state.pt"
    saved = state.stat().st_mtime_ns
    stuck = run_row(run)
    assert (stuck.status, stuck.attempts, stuck.output_adapter) == ("running", 1, "")
    wait_for(lambda: heartbeat.is_stale(run_row(run)), 60, "the run to go stale", first_log)
    with transaction.atomic():
        resumed = resume_training_run(run_row(run))
    assert (resumed.status, resumed.lease) == ("queued", "")
    second = start_worker("gpu-batch", env, second_log)
    try:
        # two deliveries: the one queued again and the killed worker's, handed out again
        wait_for(lambda: finished_tasks(second_log, TASK) == 2, 900, "both deliveries", second_log)
    finally:
        stop(second)
    finished = run_row(run)
    assert finished.status == "done", finished.error
    assert (finished.attempts, finished.resumed, finished.lease) == (2, 1, "")
    assert [(h["seed"], h["epoch"]) for h in finished.history] == [(0, e) for e in range(4)]
    assert state.stat().st_mtime_ns == saved  # epoch 0 was not trained again
    assert ModelCheckpoint.objects.filter(training_run=finished).count() == 1
    assert (Path(finished.output_adapter) / "adapter_config.json").exists()
