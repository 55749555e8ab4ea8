"""The model service's tasks through a real Celery worker (Redis broker, gpu-live and gpu-batch
queues)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from games.live import clock, engine, notify
from games.models import (
    FeedbackLabel,
    Game,
    GameConfig,
    Round,
    Study,
    System,
    Tangram,
    Turn,
    Worker,
)
from games.workers import get_or_create_worker
from models_svc.models import DecodeRun, ModelCheckpoint
from models_svc.registry import clear_cache
from models_svc.selectors import policy_input_for_turn
from tests.factories import make_game, make_study, make_system, start_live_game

from .conftest import NAMES

pytestmark = pytest.mark.celery


def live_game(policy: str) -> tuple[Game, Worker]:
    """A game against a model listener, started, waiting for the speaker's first utterance."""
    for name in NAMES:
        Tangram.objects.get_or_create(name=name, defaults={"split": "train"})
    study = Study.objects.create(name=f"live-{policy[:20]}")
    round_ = Round.objects.create(study=study, index=0)
    system = System.objects.create(round=round_, name="B-FFT", policy_checkpoint=policy)
    return start_model_game(system, NAMES)


def start_model_game(system: System, names: list[str], external_id: str = "g1"):
    """Start a game of ``system`` (listener order = ``names`` reversed, targets the first
    three); returns the game and its speaker."""
    study = system.round.study
    speaker = get_or_create_worker(Worker.Platform.LOCAL, f"speaker-{external_id}")
    config = GameConfig.objects.create(
        study=study,
        speaker_order=names,
        listener_order=list(reversed(names)),
        targets=names[:3],
    )
    game = start_live_game(system, config, speaker, now=clock.now(), external_id=external_id)
    return game, speaker


def wait_for(condition, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")


def play_turn(game: Game, speaker: Worker, utterance: str) -> Turn:
    """The speaker talks; the engine queues listener_act by name; wait for the answer."""
    change = engine.submit_utterance(game.pk, speaker.pk, utterance)
    assert change.model_turn is not None
    notify.send_followups(change)
    return wait_for(
        lambda: Turn.objects.filter(
            game=game, index=change.model_turn, selection_after__isnull=False
        ).first()
    )


def test_random_listener_plays_turns(celery_worker, settings):
    settings.PLAY_DEADLINE_TASKS = False
    game, speaker = live_game("random")
    from models_svc.baselines import RandomPolicy

    for index, utterance in enumerate(["the fish", "no, the other one"]):
        change = engine.submit_utterance(game.pk, speaker.pk, utterance)
        expected = RandomPolicy().act([policy_input_for_turn(game.pk, index)])[0]
        notify.send_followups(change)
        turn = wait_for(
            lambda i=index: Turn.objects.filter(
                game=game, index=i, selection_after__isnull=False
            ).first()
        )
        assert (turn.action, turn.action_reason) == (expected.action, "")
        assert turn.action_probability == pytest.approx(1 / 1023)
        game.refresh_from_db()
        if game.status == Game.Status.ENDED:
            break


def test_redelivered_task_for_an_answered_turn_changes_nothing(celery_worker, settings):
    from config.celery import app

    settings.PLAY_DEADLINE_TASKS = False
    game, speaker = live_game("random:toggle")
    turn = play_turn(game, speaker, "the fish")
    result = app.send_task("models_svc.tasks.listener_act", args=[game.pk, 0], queue="gpu-live")
    assert result.get(timeout=60) is None
    again = Turn.objects.get(pk=turn.pk)
    assert (again.action, again.action_probability) == (turn.action, turn.action_probability)
    assert turn.action_probability == pytest.approx(0.1)


@pytest.mark.ml
def test_transformers_listener_plays_through_the_worker(
    celery_worker, settings, tiny_idefics2, tangram_images
):
    from models_svc.registry import get_policy

    settings.PLAY_DEADLINE_TASKS = False
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu", "TEMPERATURE": 0.7}
    clear_cache()  # a policy cached at another temperature must not act here
    spec = f"hf:{tiny_idefics2}"
    game, speaker = live_game(spec)
    turn = play_turn(game, speaker, "the man with a hat")
    assert turn.action and turn.action_reason == ""
    policy = get_policy(spec)
    assert turn.action_probability == pytest.approx(
        policy.score(policy_input_for_turn(game.pk, 0), turn.action), rel=1e-4
    )
    # The decoding setting p_t was sampled under travels with it to training.
    assert (turn.sampling_temperature, turn.sampling_constrained) == (0.7, True)
    assert turn.prompt_format == "respect-2024"
    clear_cache()


@pytest.mark.ml
def test_clip_listener_plays_through_the_worker(
    celery_worker, settings, tiny_hf_clip, tangram_images
):
    from models_svc.registry import get_policy

    settings.PLAY_DEADLINE_TASKS = False
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    spec = f"clip:{tiny_hf_clip}"
    game, speaker = live_game(spec)
    turn = play_turn(game, speaker, "a bird")
    expected = get_policy(spec).act([policy_input_for_turn(game.pk, 0)])[0]
    assert (turn.action, turn.action_probability) == (
        expected.action,
        pytest.approx(expected.probability),
    )


def test_decode_run_from_the_web_is_done_by_the_worker(celery_worker):
    from models_svc.services import launch_decode_run

    study = make_study("decode-me")
    make_game(
        make_system(study), [["page9-9"], ["page9-8"]], ["the bird", "no, undo"], external_id="d1"
    )
    with transaction.atomic():
        run = launch_decode_run(DecodeRun(study=study, decoder="lexicon", kind="ternary"))
    done = wait_for(lambda: DecodeRun.objects.filter(pk=run.pk, status="done").first())
    assert (done.total, done.done, done.created) == (1, 1, 1)
    label = FeedbackLabel.objects.get()
    assert (label.turn.index, label.label, label.kind) == (0, "negative", "ternary")


def test_checkpoint_check_on_the_worker(celery_worker, tmp_path):
    from config.celery import app

    missing = ModelCheckpoint.objects.create(kind="policy", spec=f"hf:{tmp_path / 'gone'}")
    lexicon = ModelCheckpoint.objects.create(kind="decoder", spec="lexicon")
    for checkpoint in (missing, lexicon):
        app.send_task(
            "models_svc.tasks.check_checkpoint", args=[checkpoint.pk], queue="gpu-batch"
        ).get(timeout=60)
    missing.refresh_from_db()
    lexicon.refresh_from_db()
    assert missing.status == "missing" and "does not exist" in missing.status_message
    assert lexicon.status == "ready" and lexicon.status_message == "loaded by a worker (lexicon)"


@pytest.mark.ml
def test_embedding_launched_from_the_admin_feeds_similarity(
    celery_worker, client, settings, tiny_open_clip, tangram_images
):
    from models_svc.selectors import similarity_matrix
    from tests.factories import make_user

    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    for name in NAMES:
        Tangram.objects.get_or_create(name=name)
    checkpoint = ModelCheckpoint.objects.create(kind="embedder", spec=f"clip:{tiny_open_clip}")
    client.force_login(make_user("boss", role="admin"))
    client.post(
        "/admin/models_svc/modelcheckpoint/",
        {"action": "embed_tangrams", "_selected_action": [checkpoint.pk]},
    )
    wait_for(lambda: similarity_matrix(NAMES[:4]) is not None)
    matrix = similarity_matrix(NAMES[:4])
    assert matrix.shape == (4, 4)
    assert list(matrix.diagonal()) == [1.0] * 4
