"""π₀ from the seed set: a seed run trains on D₀ alone and round 0 deploys its adapter."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from games.models import Study, System, Tangram
from models_svc.models import ModelCheckpoint, TrainingManifest, TrainingRun
from models_svc.training.manifests import build_seed_manifest
from models_svc.training.seed_runs import SEED_RUN_SYSTEM, deploy_seed_policy, launch_seed_run
from models_svc.training.selectors import TrainingError
from tests.factories import make_game, make_study, make_system

from .conftest import NAMES

pytestmark = pytest.mark.django_db

TARGETS = ["page9-0", "page9-1", "page9-2"]  # letters J, I, H (the listener order is reversed)


def human_study(name: str, games: int = 12) -> Study:
    """Round 0 with CONTROL and B-FFT (no games yet) and HH games on dev tangrams: turn 0 picks
    J (good), turn 1 picks E and I (E wrong: not good), turn 2 drops E (good)."""
    study = make_study(name)
    for tangram in NAMES:
        Tangram.objects.update_or_create(name=tangram, defaults={"split": "dev"})
    human = make_system(study, 0, "HH")
    make_system(study, 0, "CONTROL")
    make_system(study, 0, "B-FFT")
    for _ in range(games):
        make_game(
            human,
            [["page9-0"], ["page9-0", "page9-5", "page9-1"], ["page9-0", "page9-1"]],
            ["the bird", "the hat and the boat", "no, not the hat"],
            targets=TARGETS,
        )
    return study


def test_a_seed_run_without_d0_says_so_and_writes_nothing(tmp_path):
    study = human_study("no-d0", games=1)
    with pytest.raises(TrainingError, match=r"has no seed set D₀ in prompt format 'respect-2024'"):
        launch_seed_run(study, base=f"hf:{tmp_path}")
    build_seed_manifest(study, 0, prompt_format="platform-p1")  # D₀ in another format only
    with pytest.raises(TrainingError, match=r"build_seed_set --study no-d0 --format respect-2024"):
        launch_seed_run(study, base=f"hf:{tmp_path}")
    with pytest.raises(TrainingError, match="acts with policy 'random'.* --base hf:PATH"):
        launch_seed_run(study)
    assert not TrainingRun.objects.exists()
    with pytest.raises(CommandError, match="has no seed set D₀"):
        call_command(
            "train_policy", "--study", "no-d0", "--seed-policy", "--base", f"hf:{tmp_path}"
        )


def test_a_seed_run_trains_on_d0_alone_from_the_base(tmp_path, django_capture_on_commit_callbacks):
    study = human_study("seed-run", games=12)
    seed = build_seed_manifest(study, 0)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = launch_seed_run(study, base=f"hf:{tmp_path}")
    assert len(queued) == 1
    assert (run.system_name, run.round_index, run.objective) == (SEED_RUN_SYSTEM, 0, "fft")
    assert run.manifest == seed and run.seed_manifest is None and run.initial_adapter == ""
    assert run.hyperparameters["epochs"] == 40 and run.hyperparameters["rehearse_seed_set"] is False
    with pytest.raises(TrainingError, match=f"seed run #{run.pk} is under way"):
        launch_seed_run(study, base=f"hf:{tmp_path}")
    TrainingRun.objects.filter(pk=run.pk).update(status="cancelled")
    tiny = launch_seed_run(study, base=f"hf:{tmp_path}", preset="tiny", overrides={"seeds": 1})
    assert (tiny.hyperparameters["epochs"], tiny.hyperparameters["lora_r"]) == (10, 32)
    assert tiny.hyperparameters["seeds"] == 1


def test_deploying_is_refused_for_other_runs_unfinished_runs_and_played_rounds(tmp_path):
    study = human_study("deploy-refusals", games=2)
    seed = build_seed_manifest(study, 0)
    run = TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name=SEED_RUN_SYSTEM,
        objective="fft",
        base_checkpoint="hf:/m/base",
        prompt_format="respect-2024",
        manifest=seed,
    )
    with pytest.raises(TrainingError, match=f"seed run {run.pk} is queued: only a finished"):
        deploy_seed_policy(run)
    TrainingRun.objects.filter(pk=run.pk).update(status="done", output_adapter="/runs/pi0")
    run.refresh_from_db()
    train = TrainingManifest.objects.create(
        study=study, role="train", round_index=0, system_name="B-FFT", content_hash="x"
    )
    other = TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name="B-FFT",
        objective="fft",
        base_checkpoint="hf:/m/base",
        prompt_format="respect-2024",
        manifest=train,
        status="done",
        output_adapter="/runs/b",
    )
    with pytest.raises(TrainingError, match=f"training run {other.pk} is not a seed run"):
        deploy_seed_policy(other)
    System.objects.filter(round__study=study, name="B-FFT").update(prompt_format="platform-p1")
    with pytest.raises(TrainingError, match="B-FFT act in another prompt format"):
        deploy_seed_policy(run)
    System.objects.filter(round__study=study, name="B-FFT").update(prompt_format="respect-2024")
    make_game(System.objects.get(round__study=study, name="B-FFT"), [["page9-0"]], ["a"])
    with pytest.raises(TrainingError, match=r"already has 1 game\(s\) of its model systems"):
        deploy_seed_policy(run)
    assert set(System.objects.values_list("policy_checkpoint", flat=True)) == {""}


@pytest.mark.ml
def test_a_seed_run_on_human_games_gives_round_zero_its_policy(
    settings, tiny_idefics2, tangram_images, tmp_path, capsys
):
    from models_svc.registry import get_policy
    from models_svc.selectors import policy_input_for_turn

    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    study = human_study("pi0", games=12)
    call_command("build_seed_set", "--study", "pi0")
    call_command(
        "train_policy",
        *("--study", "pi0", "--seed-policy", "--base", f"hf:{tiny_idefics2}"),
        *("--preset", "tiny", "--epochs", "2", "--seeds", "1", "--set", "effective_batch=13"),
    )
    run = TrainingRun.objects.get()
    call_command("run_training", "--run", str(run.pk))
    run.refresh_from_db()
    assert run.status == "done", run.error
    # 24 good turns + 2 synthetic ones, 13 per step, 2 epochs
    assert run.manifest.summary["examples"] == 26
    assert (run.total_steps, [h["epoch"] for h in run.history]) == (4, [0, 1])
    adapter = tmp_path / "training" / f"run-{run.folder}" / "adapter"
    assert run.output_adapter == str(adapter) and (adapter / "adapter_config.json").is_file()
    capsys.readouterr()
    call_command("train_policy", "--study", "pi0", "--deploy", str(run.pk))
    assert "round 0 policy of B-FFT, CONTROL" in capsys.readouterr().out
    spec = f"hf:{tiny_idefics2}+lora:{adapter}"
    systems = System.objects.filter(round__study=study).exclude(name="HH")
    assert {s.name: s.policy_checkpoint for s in systems} == {"B-FFT": spec, "CONTROL": spec}
    assert ModelCheckpoint.objects.get(round__index=0, spec=spec).training_run == run
    policy = get_policy(spec, prompt_format="respect-2024")
    game = study.games.filter(system__name="HH").order_by("pk").first()
    decision = policy.act([policy_input_for_turn(game.pk, 0)])[0]
    assert 0 < decision.probability <= 1
