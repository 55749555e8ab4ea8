"""Importance-weight diagnostics end to end: p_t logged through the real scoring path by the
model a run starts from, a real RL and a real KTO run with augmentation on, then
``training_report`` and the run page."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from models_svc.models import TrainingRun
from models_svc.registry import clear_cache
from models_svc.services import decode_study
from models_svc.training.runs import execute_training_run, launch_training_run
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.ml]


def test_runs_starting_from_the_logging_policy_report_c_one_and_r_zero(
    client, settings, tiny_idefics2, tangram_images, tmp_path, capsys
):
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    clear_cache()
    system = make_system(make_study("report"), 0, "B-KTO")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(2):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
        make_game(system, [["page9-7"], []], ["pick A", "no, not that one"])
    study = system.round.study
    decode_study(study, decoder_spec="lexicon", kind="binary")
    # p_t of every turn from the base model the runs start from (round 0 has no adapter).
    call_command("score_turns", "--study", "report", "--policy", f"hf:{tiny_idefics2}", "--here")
    reports = {}
    for objective in ("rl", "kto"):
        run = launch_training_run(
            study,
            0,
            "B-KTO",
            objective=objective,
            base=f"hf:{tiny_idefics2}",
            overrides={
                "epochs": 1,
                "seeds": 1,
                "effective_batch": 2,
                "learning_rate": 0.0,
                "rehearse_seed_set": False,  # the study has no human–human games
            },
        )
        assert run.hyperparameters["augment_permutations"] is True
        run = execute_training_run(run.pk)
        assert run.status == "done", run.error
        capsys.readouterr()
        call_command("training_report", "--run", str(run.pk), "--json")
        reports[objective] = json.loads(capsys.readouterr().out)
    clear_cache()

    rl, kto = reports["rl"]["start"], reports["kto"]["start"]
    assert rl["kto_log_ratio"] is None and kto["rl_coefficient"] is None
    for name in ("min", "mean", "max"):
        assert rl["rl_coefficient"][name] == pytest.approx(1.0, abs=1e-3)
        assert kto["kto_log_ratio"][name] == pytest.approx(0.0, abs=1e-3)
        assert reports["rl"]["epochs"][0]["rl_coefficient"][name] == pytest.approx(1.0, abs=1e-3)
        assert reports["kto"]["epochs"][0]["kto_log_ratio"][name] == pytest.approx(0.0, abs=1e-3)
    assert reports["kto"]["label_smoothing"] == {"objective": 0.1, "rehearsal": 0.1}

    run = TrainingRun.objects.get(objective="rl")
    call_command("training_report", "--run", str(run.pk))
    text = capsys.readouterr().out
    assert "checkpoint selection: greedy decoding constrained to valid actions" in text
    assert "start  RL importance weight c = π/p_t (before floor and cap): min " in text
    client.force_login(make_user("rita", role="researcher"))
    page = client.get(f"/models/training/{run.pk}/").content.decode()
    assert 'id="run-diagnostics"' in page and "RL importance weight c" in page
    assert "greedy decoding constrained to valid actions" in page
