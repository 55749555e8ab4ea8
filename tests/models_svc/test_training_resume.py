"""A training run survives its worker being killed: the redelivered task resumes after the
last complete epoch and the run finishes once. Real worker processes, real Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from models_svc.models import ModelCheckpoint, TrainingRun
from models_svc.services import decode_study
from models_svc.training.runs import launch_training_run
from tests.factories import make_game, make_study, make_system

pytestmark = [pytest.mark.ml, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "--pool", "solo"]
        + ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(condition, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def run_row(run: TrainingRun) -> TrainingRun:
    return TrainingRun.objects.get(pk=run.pk)


def test_killed_worker_resumes_from_its_last_epoch(tiny_idefics2, tangram_images, tmp_path):
    system = make_system(make_study("resume"), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(6):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "TANGRAM_DIR": tangram_images[0].rsplit("/", 1)[0],
        "RESPECT_TRAINING_DIR": str(tmp_path / "training"),
        "RESPECT_MODEL_DEVICE": "cpu",
        "CELERY_VISIBILITY_TIMEOUT": "2",
        "PLAY_DEADLINE_TASKS": "0",
    }
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        with transaction.atomic():
            run = launch_training_run(
                system.round.study,
                0,
                "B-FFT",
                base=f"hf:{tiny_idefics2}",
                overrides={"epochs": 4, "seeds": 1, "effective_batch": 2},
            )
        wait_for(lambda: run_row(run).epoch >= 1, 240, "the first epoch", log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        state = tmp_path / "training" / f"run-{run.pk}" / "seed-0" / "epoch-0" / "trainer_state.pt"
        saved = state.stat().st_mtime_ns
        assert run_row(run).status == "running"
        second = start_worker(env, log)
        try:
            wait_for(lambda: run_row(run).status in ("done", "failed"), 300, "the rerun", log)
            finished = run_row(run)
            assert finished.status == "done", finished.error
            assert finished.resumed == 1
            assert [(h["seed"], h["epoch"]) for h in finished.history] == [(0, e) for e in range(4)]
            assert state.stat().st_mtime_ns == saved  # epoch 0 was not trained again
            assert ModelCheckpoint.objects.filter(training_run=finished).count() == 1
            assert (Path(finished.output_adapter) / "adapter_config.json").exists()
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
