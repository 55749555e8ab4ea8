"""The researchers' Checkpoints page: register a checkpoint directory, check it, see why not."""

from __future__ import annotations

import json
import shutil

import pytest

from models_svc.models import ModelCheckpoint
from tests.factories import make_study, make_system, make_user

pytestmark = pytest.mark.django_db
PAGE = "/models/checkpoints/"


@pytest.fixture
def researcher(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


@pytest.mark.ml
def test_a_tiny_checkpoint_is_registered_checked_and_offered_for_training(
    researcher, tiny_idefics2
):
    from evaluation.board.selectors import base_checkpoints

    round_ = make_system(make_study("ckpt"), 0, "B-FFT").round
    response = researcher.post(
        PAGE,
        {"kind": "policy", "spec": tiny_idefics2, "round": round_.pk, "notes": "tiny"},
        follow=True,
    )
    checkpoint = ModelCheckpoint.objects.get()
    assert (checkpoint.spec, checkpoint.round, checkpoint.status) == (
        f"hf:{tiny_idefics2}",
        round_,
        "ready",
    )
    assert len(checkpoint.model_version) == 16 and checkpoint.checked_at is not None
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"Registered policy checkpoint hf:{tiny_idefics2}: files ready."]
    page = response.content.decode()
    assert f'<tr data-spec="hf:{tiny_idefics2}"><td>ckpt · round 0</td>' in page
    assert checkpoint.model_version in page
    assert base_checkpoints() == [f"hf:{tiny_idefics2}"]

    again = researcher.post(
        PAGE, {"kind": "policy", "spec": f"hf:{tiny_idefics2}", "round": round_.pk}, follow=True
    )
    assert [str(m) for m in again.context["messages"]] == [
        f"hf:{tiny_idefics2} was already registered; checked again: ready."
    ]
    assert ModelCheckpoint.objects.count() == 1


def test_a_missing_path_is_refused_and_nothing_is_stored(researcher, tmp_path):
    response = researcher.post(PAGE, {"kind": "policy", "spec": str(tmp_path / "nope")})
    assert response.status_code == 400
    assert f"Checkpoint: {tmp_path / 'nope'} is not a checkpoint directory" in (
        response.content.decode()
    )
    assert not ModelCheckpoint.objects.exists()


def test_a_directory_of_the_wrong_kind_is_refused_naming_what_it_holds(researcher, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    response = researcher.post(PAGE, {"kind": "policy", "spec": str(tmp_path)})
    assert response.status_code == 400
    assert f"not registered: {tmp_path} is not a Hugging Face model directory" in (
        response.content.decode()
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    response = researcher.post(PAGE, {"kind": "decoder", "spec": str(empty)})
    assert "has no config.json (nor adapter_config.json or open_clip_config.json)" in (
        response.content.decode()
    )
    assert not ModelCheckpoint.objects.exists()


def test_a_malformed_spec_is_refused_on_its_field(researcher):
    response = researcher.post(PAGE, {"kind": "embedder", "spec": "lexicon"})
    assert response.status_code == 400
    assert 'data-field="spec">Checkpoint: ' in response.content.decode()
    assert not ModelCheckpoint.objects.exists()


def test_checking_again_finds_a_checkpoint_that_went_missing(researcher, tmp_path):
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "idefics2"}))
    researcher.post(PAGE, {"kind": "policy", "spec": str(directory)}, follow=True)
    checkpoint = ModelCheckpoint.objects.get(status="ready")
    shutil.rmtree(directory)
    response = researcher.post(f"{PAGE}{checkpoint.pk}/check/", follow=True)
    checkpoint.refresh_from_db()
    assert checkpoint.status == "missing"
    assert [str(m) for m in response.context["messages"]] == [
        f"hf:{directory}: path missing: policy checkpoint: checkpoint path {directory} does not "
        "exist"
    ]


def test_loading_is_queued_for_a_gpu_worker(researcher, django_capture_on_commit_callbacks):
    researcher.post(PAGE, {"kind": "decoder", "spec": "lexicon"}, follow=True)
    checkpoint = ModelCheckpoint.objects.get(spec="lexicon", status="ready")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = researcher.post(f"{PAGE}{checkpoint.pk}/load/", follow=True)
    assert len(queued) == 1
    assert [str(m) for m in response.context["messages"]] == [
        "Loading lexicon on a gpu worker; its status here changes when it is done."
    ]


def test_the_page_is_for_researchers_only(client):
    assert client.get(PAGE).status_code == 302
    client.force_login(make_user("walter"))
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"kind": "decoder", "spec": "lexicon"}).status_code == 403
    assert not ModelCheckpoint.objects.exists()
