"""Checkpoint paths: only directories under the model roots, one checkpoint per directory
whatever the spelling, and the same refusal for any path outside (no filesystem oracle)."""

from __future__ import annotations

import json
import os

import pytest

from models_svc.checkpoint_registration import RegistrationError, register_checkpoint
from models_svc.decode_runs import DecodeRequestError, normalized_decoder
from models_svc.models import ModelCheckpoint
from models_svc.training.runs import base_checkpoint
from models_svc.training.selectors import TrainingError
from tests.factories import make_study, make_system, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(tmp_path, settings):
    """A model root holding one (config-only) checkpoint ``tiny``; beside it, outside every
    root, another checkpoint directory and a link to it from inside the root."""
    models = tmp_path / "models"
    for directory in (models / "tiny", tmp_path / "outside"):
        directory.mkdir(parents=True)
        (directory / "config.json").write_text(json.dumps({"model_type": "idefics2"}))
    (models / "escape").symlink_to(tmp_path / "outside")
    settings.MODEL_ROOTS = [str(models)]
    return models


def outside(text: str, root) -> str:
    return f"{text} is not under a model root (RESPECT_MODEL_ROOTS: {os.path.realpath(root)})"


def test_every_spelling_of_a_directory_is_one_checkpoint(root):
    real = os.path.realpath(root / "tiny")
    spellings = [
        f"{root}/tiny",
        f"{root}/tiny/",
        f"{root}//tiny",
        f"{root}/./tiny",
        f"/etc/..{root}/tiny",
        f"hf:{root}/tiny/",
    ]
    created = [register_checkpoint("policy", text)[1] for text in spellings]
    assert created == [True, False, False, False, False, False]
    assert list(ModelCheckpoint.objects.values_list("spec", "status")) == [(f"hf:{real}", "ready")]


@pytest.mark.parametrize(
    "text",
    [
        "/etc/shadow",  # exists, a file
        "/root/.ssh/authorized_keys",  # most likely missing
        "/no/such/directory",
        "{root}/../outside",  # a checkpoint directory, outside
        "{root}/tiny/../../outside",
        "{root}/escape",  # a link out of the root
        "~",
    ],
)
def test_a_path_outside_the_roots_gets_one_message_whether_it_exists_or_not(root, text):
    text = text.format(root=root)
    with pytest.raises(RegistrationError) as refused:
        register_checkpoint("policy", text)
    assert (refused.value.field, refused.value.message) == ("spec", outside(text, root))
    with pytest.raises(DecodeRequestError) as refused_decoding:
        normalized_decoder(f"hf:{text}")
    assert refused_decoding.value.message == outside(text, root)
    system = make_system(make_study("paths"), 0, "B-FFT")
    with pytest.raises(TrainingError) as refused_training:
        base_checkpoint(system, f"hf:{text}")
    assert refused_training.value.message == f"base checkpoint: {outside(text, root)}"
    assert not ModelCheckpoint.objects.exists()


def test_decoding_and_training_name_the_canonical_directory(root):
    real = os.path.realpath(root / "tiny")
    assert normalized_decoder(f"hf:{root}//./tiny/") == f"hf:{real}"
    assert normalized_decoder("lexicon") == "lexicon"
    system = make_system(make_study("paths"), 0, "B-FFT")
    assert base_checkpoint(system, f"hf:{root}/tiny/") == (f"hf:{real}", "")
    with pytest.raises(RegistrationError, match="is not a checkpoint directory"):
        register_checkpoint("policy", f"{root}/missing")


def test_the_checkpoints_page_refuses_a_path_outside_on_its_field(client, root):
    client.force_login(make_user("rita", role="researcher"))
    response = client.post("/models/checkpoints/", {"kind": "policy", "spec": "/etc/shadow"})
    assert response.status_code == 400
    assert outside("/etc/shadow", root) in response.content.decode()
    assert "is a file" not in response.content.decode()
