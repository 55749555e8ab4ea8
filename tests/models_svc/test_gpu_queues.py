"""Two GPU queues: live listener turns on ``gpu-live``, every other model task on ``gpu-batch``,
and a live game keeps being answered while a training run occupies the batch worker. Real
worker processes, real Redis broker."""

from __future__ import annotations

import pytest
from django.db import transaction

from config.celery import app
from games.live import engine, notify
from games.models import Game, Turn
from models_svc.models import DecodeRun, ScoringRun, TrainingRun
from models_svc.services import decode_study
from models_svc.training.runs import launch_training_run
from tests.factories import make_game, make_study, make_system
from tests.worker_processes import finished_tasks, kill, start_worker, wait_for, worker_env

from .test_celery_tasks import live_game

BATCH_TASKS = [
    "models_svc.tasks.decode_feedback_run",
    "models_svc.tasks.embed_tangrams",
    "models_svc.tasks.check_checkpoint",
    "models_svc.tasks.train_policy_run",
    "models_svc.tasks.score_turns_run",
]


def routed_queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_listener_turns_alone_go_live_everything_else_to_batch():
    assert routed_queue("models_svc.tasks.listener_act") == "gpu-live"
    assert [routed_queue(name) for name in BATCH_TASKS] == ["gpu-batch"] * 5
    assert {DecodeRun.task_queue, TrainingRun.task_queue, ScoringRun.task_queue} == {"gpu-batch"}
    assert routed_queue("evaluation.tasks.compute_metric_run") == "default"


@pytest.mark.ml
@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_live_game_is_answered_while_training_runs_on_the_batch_worker(
    tiny_idefics2, tangram_images, tmp_path, settings
):
    system = make_system(make_study("busy gpu"), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(6):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    settings.PLAY_DEADLINE_TASKS = False
    env = worker_env(
        TANGRAM_DIR=tangram_images[0].rsplit("/", 1)[0],
        RESPECT_TRAINING_DIR=str(tmp_path / "training"),
        RESPECT_MODEL_DEVICE="cpu",
    )
    batch_log, live_log = tmp_path / "batch.log", tmp_path / "live.log"
    app.control.purge()
    batch = start_worker("gpu-batch", env, batch_log)
    live = start_worker("gpu-live", env, live_log, ("--pool", "threads", "-c", "4"))
    try:
        with transaction.atomic():
            run = launch_training_run(
                system.round.study,
                0,
                "B-FFT",
                base=f"hf:{tiny_idefics2}",
                overrides={
                    "epochs": 50,
                    "seeds": 1,
                    "effective_batch": 2,
                    "rehearse_seed_set": False,  # no human–human games, so no D₀
                },
            )
        wait_for(lambda: TrainingRun.objects.get(pk=run.pk).epoch >= 1, 600, "training", batch_log)
        game, speaker = live_game(f"hf:{tiny_idefics2}")
        for index, utterance in enumerate(["the man with a hat", "no, the other one"]):
            change = engine.submit_utterance(game.pk, speaker.pk, utterance)
            assert change.model_turn == index
            notify.send_followups(change)
            turn = wait_for(
                lambda i=index: Turn.objects.filter(
                    game=game, index=i, selection_after__isnull=False
                ).first(),
                300,
                f"turn {index}'s answer",
                live_log,
                batch_log,
            )
            assert turn.action_reason == ""  # answered by the model, not timed out
            assert TrainingRun.objects.get(pk=run.pk).status == "running"
            game.refresh_from_db()
            if game.status == Game.Status.ENDED:
                break
        assert "Task models_svc.tasks.listener_act[" not in batch_log.read_text()
        assert "Task models_svc.tasks.train_policy_run[" not in live_log.read_text()
        assert finished_tasks(live_log, "models_svc.tasks.listener_act") >= 1
    finally:
        kill(live)
        kill(batch)
