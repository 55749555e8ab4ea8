"""Round 0's seed step: build D₀, train π₀ on it, deploy π₀ — from the board and the run page."""

from __future__ import annotations

import pytest

from evaluation.board.selectors import round_board
from evaluation.board.steps import DONE, READY, RUNNING, WAITING
from games.models import Round, System
from models_svc.models import ModelCheckpoint, TrainingManifest, TrainingRun
from tests.factories import make_user
from tests.models_svc.test_seed_run import human_study

from .test_actions import board_post, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


def seed_of(round_: Round):
    return round_board(Round.objects.select_related("study").get(pk=round_.pk), True).seed


def test_d0_pi0_and_its_deployment_from_the_board(
    researcher, tmp_path, django_capture_on_commit_callbacks
):
    study = human_study("board-seed", games=12)
    round_ = study.rounds.get(index=0)
    seed = seed_of(round_)
    assert [(r.prompt_format, r.systems, r.manifest) for r in seed.seed_sets] == [
        ("respect-2024", ["B-FFT", "CONTROL"], None)
    ]
    assert seed.state == WAITING
    assert seed.train_blocked.startswith("study 'board-seed' has no seed set D₀ in prompt format")
    assert seed.deploy_blocked == "train π₀ first: no finished seed run"
    refused = board_post(
        researcher, round_, "seed-run", {"base": f"hf:{tmp_path}", "preset": "tiny"}
    )
    assert messages_of(refused) == [f"π₀ not launched: {seed.train_blocked}"]
    page = researcher.get(f"/studies/{study.pk}/board/").content.decode()
    assert 'data-step="seed"' in page and "Build D₀</button>" in page

    other_split = board_post(
        researcher, round_, "seed-set", {"prompt_format": "respect-2024", "split": "train"}
    )
    assert messages_of(other_split) == [
        "D₀ not built: study 'board-seed' round 0 has no ended HH games whose tangrams are all "
        "in the 'train' split"
    ]
    built = board_post(
        researcher, round_, "seed-set", {"prompt_format": "respect-2024", "split": "dev"}
    )
    manifest = TrainingManifest.objects.get(role="seed")
    assert messages_of(built) == [
        f"Seed set D₀ (respect-2024) {manifest.content_hash[:12]}: 24 good turns and 1 undo + "
        "1 clear synthetic turns from 12 games."
    ]
    seed = seed_of(round_)
    assert seed.seed_sets[0].manifest == manifest and seed.train_blocked == ""
    assert seed.state == READY

    form = {"base": f"hf:{tmp_path}", "preset": "tiny", "epochs": 3}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        launched = board_post(researcher, round_, "seed-run", form)
    run = TrainingRun.objects.get()
    assert messages_of(launched) == [
        f"Seed run {run.pk} (π₀ on D₀, 3 epochs) queued on the gpu-batch queue."
    ]
    assert len(queued) == 1 and run.manifest == manifest and run.requested_by.username == "rita"
    run_page = researcher.get(f"/models/training/{run.pk}/").content.decode()
    assert "this is a seed run: it trains π₀ on D₀ alone" in run_page
    assert researcher.get(f"/models/studies/{study.pk}/training/").status_code == 200
    seed = seed_of(round_)
    assert (
        seed.state == RUNNING and seed.train_blocked == f"seed run #{run.pk} is under way (epoch 0)"
    )

    TrainingRun.objects.filter(pk=run.pk).update(status="done", output_adapter="/runs/pi0")
    assert seed_of(round_).deploy_blocked == ""
    deployed = board_post(researcher, round_, "seed-deploy", {"run_id": run.pk})
    spec = f"hf:{tmp_path}+lora:/runs/pi0"
    assert messages_of(deployed) == [f"Round 0 (B-FFT, CONTROL) now acts with π₀: {spec}."]
    assert set(System.objects.exclude(name="HH").values_list("policy_checkpoint", flat=True)) == {
        spec
    }
    assert ModelCheckpoint.objects.get(round=round_).training_run_id == run.pk
    seed = seed_of(round_)
    assert (
        seed.state == DONE
        and seed.deploy_blocked == f"round 0 already acts with seed run #{run.pk}"
    )


def test_the_run_page_builds_d0_for_a_run_that_has_none(researcher):
    study = human_study("run-page-seed", games=2)
    train = TrainingManifest.objects.create(
        study=study, role="train", round_index=0, system_name="B-FFT", content_hash="t"
    )
    run = TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name="B-FFT",
        objective="fft",
        base_checkpoint="hf:/m/base",
        prompt_format="platform-p1",
        manifest=train,
        hyperparameters={"rehearse_seed_set": False},
    )
    page = researcher.get(f"/models/training/{run.pk}/").content.decode()
    assert "none rehearsed (rehearsal turned off)" in page
    assert "Build D₀ (platform-p1) from round 0's human–human games" in page
    built = researcher.post(
        f"/studies/{study.pk}/board/seed-set/",
        {"round_index": 0, "prompt_format": "platform-p1", "split": "dev"},
        follow=True,
    )
    manifest = TrainingManifest.objects.get(role="seed")
    assert manifest.prompt_format == "platform-p1" and manifest.summary["real"] == 4
    assert messages_of(built)[0].startswith(
        f"Seed set D₀ (platform-p1) {manifest.content_hash[:12]}"
    )
