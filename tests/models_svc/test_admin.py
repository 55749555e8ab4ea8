"""Admin pages of the model service: checkpoints per round, decoding runs, embeddings."""

from __future__ import annotations

import pytest

from models_svc.models import DecodeRun, ModelCheckpoint
from tests.factories import make_study, make_system, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user("boss", role="admin"))
    return client


def test_checkpoint_list_registers_systems_and_shows_status(admin_client, tmp_path):
    study = make_study("s1")
    system = make_system(study, 1, "B-FFT")
    system.policy_checkpoint = f"hf:{tmp_path / 'gone'}"
    system.decoder = "lexicon"
    system.save()
    make_system(study, 1, "HH")
    response = admin_client.get("/admin/models_svc/modelcheckpoint/")
    assert response.status_code == 200
    rows = set(ModelCheckpoint.objects.values_list("kind", "spec", "round__index"))
    assert rows == {("policy", f"hf:{tmp_path / 'gone'}", 1), ("decoder", "lexicon", 1)}
    ids = list(ModelCheckpoint.objects.values_list("pk", flat=True))
    admin_client.post(
        "/admin/models_svc/modelcheckpoint/",
        {"action": "check_files", "_selected_action": ids},
    )
    statuses = dict(ModelCheckpoint.objects.values_list("spec", "status"))
    assert statuses == {f"hf:{tmp_path / 'gone'}": "missing", "lexicon": "ready"}
    page = admin_client.get("/admin/models_svc/modelcheckpoint/").content.decode()
    assert "s1" in page and "path missing" in page


def test_bad_spec_is_refused_by_the_form(admin_client):
    response = admin_client.post(
        "/admin/models_svc/modelcheckpoint/add/", {"kind": "decoder", "spec": "clip:/x"}
    )
    assert response.status_code == 200
    assert "is not one of" in response.content.decode()
    assert not ModelCheckpoint.objects.exists()


def test_decode_run_form_validates_round_and_decoder(admin_client):
    study = make_study("s2")
    make_system(study, 0, "B-FFT")
    response = admin_client.post(
        "/admin/models_svc/decoderun/add/",
        {
            "study": study.pk,
            "round_index": 5,
            "system_name": "",
            "decoder": "gpt",
            "kind": "binary",
        },
    )
    page = response.content.decode()
    assert "has no round 5" in page and "is not one of" in page
    assert not DecodeRun.objects.exists()


def test_researchers_without_admin_rights_cannot_launch(client):
    client.force_login(make_user("r", role="researcher"))
    assert client.get("/admin/models_svc/decoderun/add/").status_code == 302
