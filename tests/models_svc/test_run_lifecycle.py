"""Every run kind ends in done or failed with its message, whatever its work raises and whatever
state a worker finds it in; a queued run that no worker claimed goes stale and is queued again
when asked for again; a checkpoint that fails to load is marked failed and offered nowhere."""

from __future__ import annotations

import pickle
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from config import heartbeat
from evaluation import services as metric_services
from evaluation.board.selectors import base_checkpoints
from evaluation.models import MetricRun
from models_svc.decode_runs import request_decode_run
from models_svc.models import DecodeRun, ModelCheckpoint, ScoringRun, TrainingRun
from models_svc.registry import clear_cache
from models_svc.scoring import execute_scoring_run
from models_svc.services import check_checkpoint_load, decode_study, execute_decode_run
from models_svc.training.readiness import training_refusal
from tests.factories import make_game, make_study, make_system


@pytest.fixture(autouse=True)
def _no_seed_set(settings):
    """These studies have no human–human games, hence no D₀ to rehearse."""
    settings.TRAINING = {"rehearse_seed_set": False}


pytestmark = pytest.mark.django_db

TOO_LONG = "/tmp/" + "a" * 585  # one path component longer than any file system allows
STATES = ["queued", "failed", "running-stale"]


def _pickled(source: str, target: Path) -> str:
    """A copy of a checkpoint whose weights are a pickle that torch refuses to load (it names
    a Python function): loading it raises ``UnpicklingError``."""
    shutil.copytree(source, target)
    for weights in target.glob("*.safetensors"):
        weights.unlink()
    (target / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": print}))
    return str(target)


@pytest.fixture(scope="session")
def pickled_lm(ml_dir, tiny_causal_lm):
    return _pickled(tiny_causal_lm, ml_dir / "pickled-lm")


@pytest.fixture(scope="session")
def pickled_idefics2(ml_dir, tiny_idefics2):
    return _pickled(tiny_idefics2, ml_dir / "pickled-idefics2")


@pytest.fixture(autouse=True)
def _cpu(settings):
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    clear_cache()
    yield
    clear_cache()


def put_in(model, pk: int, state: str) -> None:
    """The state a delivery finds the run in: waiting, failed before (a Celery retry), or
    running on a worker that was killed (no heartbeat for longer than its stale setting)."""
    if state == "running-stale":
        assert heartbeat.claim(model, pk) is not None
        _silence(model, pk)
    else:
        model.objects.filter(pk=pk).update(status=state)


def letters_study(name: str):
    system = make_system(make_study(name), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(3):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    return system.round.study


@pytest.mark.ml
@pytest.mark.parametrize("state", STATES)
def test_a_decoder_that_cannot_be_unpickled_fails_the_decode_run_with_its_message(
    state, pickled_lm
):
    run = DecodeRun.objects.create(
        study=letters_study("pickled"), decoder=f"hf:{pickled_lm}", kind="binary"
    )
    put_in(DecodeRun, run.pk, state)
    failed = execute_decode_run(run.pk)
    assert (failed.status, failed.lease) == ("failed", "")
    assert failed.error.startswith("UnpicklingError: Weights only load failed")
    assert failed.finished_at is not None


@pytest.mark.parametrize("state", STATES)
def test_a_decoder_path_too_long_fails_the_decode_run_with_its_message(state):
    run = DecodeRun.objects.create(
        study=letters_study("long"), decoder=f"hf:{TOO_LONG}", kind="binary"
    )
    put_in(DecodeRun, run.pk, state)
    failed = execute_decode_run(run.pk)
    assert failed.status == "failed"
    assert failed.error == f"OSError: [Errno 36] File name too long: '{TOO_LONG}'"


@pytest.mark.ml
@pytest.mark.parametrize("state", STATES)
def test_a_scoring_run_whose_policy_cannot_be_unpickled_fails(state, pickled_idefics2):
    run = ScoringRun.objects.create(study=letters_study("score"), policy=f"hf:{pickled_idefics2}")
    put_in(ScoringRun, run.pk, state)
    failed = execute_scoring_run(run.pk)
    assert (failed.status, failed.scored, failed.lease) == ("failed", 0, "")
    assert failed.error.startswith("UnpicklingError: Weights only load failed")


@pytest.mark.ml
@pytest.mark.parametrize("state", STATES)
def test_a_training_run_whose_base_cannot_be_unpickled_fails(
    state, pickled_idefics2, tangram_images
):
    from models_svc.training.runs import execute_training_run, launch_training_run

    settings.TANGRAM_DIR = str(Path(tangram_images[0]).parent)
    study = letters_study("train")
    decode_study(study, decoder_spec="lexicon", kind="binary")
    run = launch_training_run(study, 0, "B-FFT", base=f"hf:{pickled_idefics2}")
    put_in(TrainingRun, run.pk, state)
    failed = execute_training_run(run.pk)
    assert (failed.status, failed.output_adapter, failed.lease) == ("failed", "", "")
    assert failed.error.startswith("UnpicklingError: Weights only load failed")


@pytest.mark.parametrize("state", STATES)
def test_a_metric_run_that_cannot_be_computed_fails(state):
    run = metric_services.create_metric_run(letters_study("metrics"), resamples=100)
    # a stored parameter that the statistics refuse (as a record written by older code might)
    MetricRun.objects.filter(pk=run.pk).update(parameters={"sampler": "no-such-sampler"})
    put_in(MetricRun, run.pk, state)
    failed = metric_services.execute_metric_run(run.pk)
    assert (failed.status, failed.message, failed.results) == ("failed", "failed", None)
    assert failed.error.startswith("ValueError: sampler must be one of")


@pytest.mark.parametrize("model", [MetricRun, DecodeRun, ScoringRun, TrainingRun])
def test_any_exception_ends_every_run_kind_failed_and_a_live_one_is_left_alone(model):
    study = letters_study("kinds")
    run = _run_of(model, study)

    def broken(found, lease):
        raise KeyError("the work broke")

    failed = heartbeat.execute(model, run.pk, broken)
    assert (failed.status, failed.error) == ("failed", "KeyError: 'the work broke'")
    lease = heartbeat.claim(model, run.pk)  # a live worker holds it now
    held = heartbeat.execute(model, run.pk, broken)
    assert (held.status, held.lease) == ("running", lease)


def _run_of(model, study):
    if model is MetricRun:
        return metric_services.create_metric_run(study, resamples=100)
    if model is DecodeRun:
        return DecodeRun.objects.create(study=study, decoder="lexicon", kind="binary")
    if model is ScoringRun:
        return ScoringRun.objects.create(study=study, policy="hf:/nowhere")
    from models_svc.models import TrainingManifest

    manifest = TrainingManifest.objects.create(
        study=study, role="train", round_index=0, system_name="B-FFT", content_hash="x" * 64
    )
    return TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name="B-FFT",
        objective="fft",
        base_checkpoint="hf:/nowhere",
        prompt_format="letters",
        manifest=manifest,
    )


def _age(model, pk: int) -> None:
    waited = timezone.now() - timedelta(seconds=settings.RUN_QUEUED_STALE_SECONDS + 1)
    model.objects.filter(pk=pk).update(queued_at=waited)


def test_a_queued_decode_run_whose_message_was_lost_is_queued_again_when_asked_again(
    django_capture_on_commit_callbacks,
):
    study = letters_study("lost")
    with django_capture_on_commit_callbacks(execute=False) as sent:
        run, created = request_decode_run(study, 0, decoder="lexicon", kind="binary")
    assert created and len(sent) == 1 and not heartbeat.is_stale(run)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        again, created = request_decode_run(study, 0, decoder="lexicon", kind="binary")
    assert (again.pk, created, len(sent)) == (run.pk, False, 0)  # waiting: not sent twice
    _age(DecodeRun, run.pk)  # the broker lost the message (a Redis restart): nobody claims it
    assert heartbeat.is_stale(DecodeRun.objects.get(pk=run.pk))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        again, created = request_decode_run(study, 0, decoder="lexicon", kind="binary")
    assert (again.pk, created, again.status, len(sent)) == (run.pk, False, "queued", 1)
    assert not heartbeat.is_stale(again)
    # claimed by a worker that was then killed: "already doing this (running)" no more
    heartbeat.claim(DecodeRun, run.pk)
    _silence(DecodeRun, run.pk)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        again, created = request_decode_run(study, 0, decoder="lexicon", kind="binary")
    assert (again.pk, created, again.status, again.lease, len(sent)) == (
        run.pk,
        False,
        "queued",
        "",
        1,
    )
    assert DecodeRun.objects.count() == 1


def _silence(model, pk: int) -> None:
    silent = timezone.now() - timedelta(seconds=heartbeat.stale_seconds(model) + 1)
    model.objects.filter(pk=pk).update(heartbeat_at=silent)


def test_a_queued_metric_run_whose_message_was_lost_is_queued_again_when_asked_again(
    django_capture_on_commit_callbacks,
):
    study = letters_study("lost-metrics")
    run, created = metric_services.request_metric_run(study, resamples=200, seed=1)
    assert created and run.status == "queued"
    _age(MetricRun, run.pk)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        again, created = metric_services.request_metric_run(study, resamples=200, seed=1)
    assert (again.pk, created, again.status, len(sent)) == (run.pk, False, "queued", 1)
    assert MetricRun.objects.count() == 1


@pytest.mark.ml
def test_a_checkpoint_that_fails_to_load_is_failed_and_not_offered_as_a_base(pickled_idefics2):
    checkpoint = ModelCheckpoint.objects.create(
        kind=ModelCheckpoint.Kind.POLICY, spec=f"hf:{pickled_idefics2}"
    )
    from models_svc.services import check_checkpoint_files

    assert check_checkpoint_files(checkpoint).status == "ready"  # the files look right
    assert base_checkpoints() == [f"hf:{pickled_idefics2}"]
    loaded = check_checkpoint_load(checkpoint.pk)
    assert loaded.status == "failed"
    assert loaded.status_message.startswith("UnpicklingError: Weights only load failed")
    assert base_checkpoints() == []
    # checking its unchanged files again does not make it ready
    assert check_checkpoint_files(loaded).status == "failed"
    study = letters_study("failed-base")
    decode_study(study, decoder_spec="lexicon", kind="binary")
    refusal = training_refusal(study, 0, "B-FFT", base=f"hf:{pickled_idefics2}")
    assert refusal is not None and refusal.field == "base"
    assert refusal.message.startswith(
        f"base checkpoint hf:{pickled_idefics2} cannot be used (Checkpoints page: failed to "
        "load): UnpicklingError: Weights only load failed"
    )
