"""Training sets, runs and the next round, through the database (and a real worker)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from games.importing import import_games_file
from games.models import FeedbackLabel, Round, Study, System, Tangram, Turn
from models_svc.models import ModelCheckpoint, TrainingManifest, TrainingRun
from models_svc.services import decode_study
from models_svc.training.config import training_config
from models_svc.training.manifests import build_seed_manifest, build_training_manifest
from models_svc.training.runs import launch_training_run, open_next_round
from models_svc.training.selectors import TrainingError, manifest_examples
from tests.factories import make_game, make_study, make_system
from tests.sample_files import SAMPLE_JSON

from .conftest import NAMES

pytestmark = pytest.mark.django_db


def sample_study() -> Study:
    data = json.loads(SAMPLE_JSON.read_text())
    names = {image.rsplit(".", 1)[0] for game in data.values() for image in game["context"]}
    Tangram.objects.bulk_create([Tangram(name=name, split="train") for name in sorted(names)])
    import_games_file(SAMPLE_JSON, study_name="samples", round_index=0, system_name="B-FFT")
    return Study.objects.get(name="samples")


def expected_exclusions() -> tuple[dict[str, int], int]:
    """The exclusion rules applied by hand to the raw export (clicks[t] is the selection after
    turn t; a turn's action is empty when its clicks equal the previous turn's)."""
    data = json.loads(SAMPLE_JSON.read_text())
    excluded = {"empty_utterance": 0, "empty_action": 0, "no_follow_up": 0}
    kept = 0
    for game in data.values():
        chat, clicks = game["chat"], game["clicks"]
        for t in range(len(chat)):
            before = set(clicks[t - 1]) if t else set()
            if not chat[t].strip():
                excluded["empty_utterance"] += 1
            elif set(clicks[t]) == before:
                excluded["empty_action"] += 1
            elif t + 1 >= len(chat) or not chat[t + 1].strip():
                excluded["no_follow_up"] += 1
            else:
                kept += 1
    return {k: v for k, v in excluded.items() if v}, kept


def test_manifest_of_the_sample_games_counts_every_exclusion():
    study = sample_study()
    decode_study(study, decoder_spec="lexicon", kind="binary")
    manifest = build_training_manifest(study, 0, "B-FFT")
    excluded, kept = expected_exclusions()
    assert manifest.summary["excluded"] == excluded
    assert manifest.summary["examples"] == kept == len(manifest.entries)
    stored = dict(
        FeedbackLabel.objects.filter(turn_id__in=[e["turn"] for e in manifest.entries])
        .values_list("turn_id", "label")
        .distinct()
    )
    labels = {label: list(stored.values()).count(label) for label in set(stored.values())}
    assert manifest.summary["labels"] == dict(sorted(labels.items()))
    assert manifest.decoder == "lexicon" and manifest.kind == "binary"
    assert manifest.prompt_format == "respect-2024"
    assert build_training_manifest(study, 0, "B-FFT").pk == manifest.pk  # same content, same row
    turn_id = manifest.entries[0]["turn"]
    Turn.objects.filter(pk=turn_id).update(action_probability=0.25)
    changed = build_training_manifest(study, 0, "B-FFT")
    assert changed.content_hash != manifest.content_hash
    assert changed.entries[0]["p"] == 0.25
    examples = manifest_examples(changed)
    assert [e.key for e in examples] == [e["key"] for e in changed.entries]
    first = Turn.objects.get(pk=turn_id)
    assert examples[0].utterance == first.utterance and examples[0].action == first.action
    assert len(examples[0].history) == first.index


def test_training_set_command_prints_the_summary_as_json(capsys):
    study = sample_study()
    decode_study(study, decoder_spec="lexicon", kind="binary")
    call_command(
        "training_set", "--study", "samples", "--round", "0", "--system", "B-FFT", "--json"
    )
    document = json.loads(capsys.readouterr().out)
    excluded, kept = expected_exclusions()
    assert document["examples"] == kept and document["excluded"] == excluded
    assert document["systems"] == ["B-FFT@0"]
    assert study.training_manifests.count() == 1


def _letters_system(study_name: str = "letters", games: int = 4) -> System:
    """A model system whose speaker names letters; every turn selects one new image."""
    system = make_system(make_study(study_name), 0, "B-FFT")
    picks = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
    for _ in range(games):
        make_game(system, picks, ["pick A", "good, now B", "yes, then I"])
    make_game(system, [["page9-7"], []], ["pick A", "no, not that one"])
    return system


def test_bad_input_is_refused_by_name_and_writes_nothing(tmp_path):
    system = _letters_system()
    study = system.round.study
    with pytest.raises(TrainingError, match="round 0 has no system 'T-RL' \\(it has B-FFT\\)"):
        launch_training_run(study, 0, "T-RL", base=f"hf:{tmp_path}")
    with pytest.raises(
        TrainingError, match=r"decode first: 0 of 9 turns labelled \(binary, lexicon\)"
    ):
        launch_training_run(study, 0, "B-FFT", base=f"hf:{tmp_path}")
    decode_study(study, decoder_spec="lexicon", kind="binary")
    with pytest.raises(TrainingError, match="acts with policy 'random'.* --base hf:PATH"):
        launch_training_run(study, 0, "B-FFT")
    with pytest.raises(TrainingError, match="RL needs the logged action probability p_t"):
        launch_training_run(study, 0, "B-FFT", objective="rl", base=f"hf:{tmp_path}")
    assert not TrainingRun.objects.exists()
    assert not TrainingManifest.objects.exists()
    with pytest.raises(TrainingError, match="missing is not a checkpoint directory"):
        launch_training_run(study, 0, "B-FFT", base=f"hf:{tmp_path}/missing")
    lonely = make_system(make_study("single-turn"), 0, "B-FFT")
    make_game(lonely, [[], ["page9-9"]], ["pick A", "the bird"])
    decode_study(lonely.round.study, decoder_spec="lexicon", kind="binary")
    with pytest.raises(TrainingError, match="is empty: 1 empty action, 1 no follow up"):
        build_training_manifest(lonely.round.study, 0, "B-FFT")
    with pytest.raises(CommandError, match="--set 'epochs': write NAME=VALUE"):
        call_command(
            "train_policy",
            "--study",
            study.name,
            "--round",
            "0",
            "--system",
            "B-FFT",
            "--set",
            "epochs",
        )
    with pytest.raises(CommandError, match="no study named 'nope'"):
        call_command("train_policy", "--study", "nope", "--round", "0", "--system", "B-FFT")


def test_seed_set_adds_one_synthetic_deselection_per_twelve_good_turns():
    study = make_study("seed")
    Tangram.objects.bulk_create([Tangram(name=f"page8-{i}", split="dev") for i in range(10)])
    human = make_system(study, 0, "HH")
    targets = ["page8-0", "page8-1", "page8-2"]
    for _ in range(12):
        # turn 0 picks a target (good), turn 1 a non-target (not good), turn 2 fixes it (good)
        make_game(
            human,
            [["page8-0"], ["page8-0", "page8-5"], ["page8-0", "page8-1"]],
            ["the bird", "the hat", "no, the boat"],
            targets=targets,
            tangram_prefix="page8-",
        )
    manifest = build_seed_manifest(study, 0)
    assert manifest.summary["real"] == 24
    assert manifest.summary["excluded"] == {"not_good": 12}
    assert manifest.summary["synthetic"] == {"undo": 1, "clear": 1}
    examples = {e.key.split(":")[1]: e for e in manifest_examples(manifest) if "synthetic" in e.key}
    # page8-5 is letter E in the reversed listener order; the undo turn shows it selected.
    undo = examples["undo"]
    assert "E" in undo.selection and undo.action == "deselect E"
    clear = examples["clear"]
    assert clear.action == "deselect " + " ".join(sorted(clear.selection))
    assert build_seed_manifest(study, 0).pk == manifest.pk


def _finished_run(system: System, adapter: str) -> TrainingRun:
    study = system.round.study
    decode_study(study, decoder_spec="lexicon", kind="binary")
    manifest = build_training_manifest(study, system.round.index, system.name)
    return TrainingRun.objects.create(
        study=study,
        round_index=system.round.index,
        system_name=system.name,
        objective="fft",
        base_checkpoint="hf:/models/base",
        prompt_format=system.prompt_format,
        manifest=manifest,
        status=TrainingRun.Status.DONE,
        output_adapter=adapter,
    )


def test_open_next_round_deploys_trained_adapters_and_the_round_zero_control():
    system = _letters_system()
    study = system.round.study
    System.objects.create(round=system.round, name="CONTROL", policy_checkpoint="hf:/m/pi0")
    System.objects.create(round=system.round, name="HH")
    refusal = "cannot open round 1: train first: no finished run for B-FFT"
    with pytest.raises(TrainingError, match=refusal):
        open_next_round(study, 0)
    run = _finished_run(system, "/runs/1/adapter")
    next_round = open_next_round(study, 0)
    systems = {s.name: s for s in next_round.systems.all()}
    assert systems["B-FFT"].policy_checkpoint == "hf:/models/base+lora:/runs/1/adapter"
    assert systems["CONTROL"].policy_checkpoint == "hf:/m/pi0"
    assert systems["HH"].policy_checkpoint == ""
    assert ModelCheckpoint.objects.get(round=next_round).training_run == run
    with pytest.raises(TrainingError, match="already has round 1"):
        open_next_round(study, 0)


@pytest.mark.ml
@pytest.mark.celery
def test_a_run_trains_on_the_worker_and_its_adapter_plays_the_next_round(
    celery_worker, settings, tiny_idefics2, tangram_images, tmp_path
):
    settings.PLAY_DEADLINE_TASKS = False
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    system = _letters_system("worker-run")
    study = system.round.study
    decode_study(study, decoder_spec="lexicon", kind="binary")
    with transaction.atomic():
        run = launch_training_run(
            study,
            0,
            "B-FFT",
            base=f"hf:{tiny_idefics2}",
            overrides={"epochs": 2, "seeds": 1, "effective_batch": 4, "rehearse_seed_set": False},
        )
    _wait(lambda: _status(run) in ("done", "failed"), timeout=300)
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert [h["epoch"] for h in run.history] == [0, 1]
    assert run.total_steps == 4 and run.step == 4
    checkpoint = ModelCheckpoint.objects.get(training_run=run, round=None)
    assert (
        checkpoint.spec == f"hf:{tiny_idefics2}+lora:{tmp_path}/training/run-{run.folder}/adapter"
    )
    next_round = open_next_round(study, 0)
    trained = next_round.systems.get(name="B-FFT")
    assert trained.policy_checkpoint == checkpoint.spec
    turn = _play_one_turn(trained)
    assert turn.prompt_format == "respect-2024"
    assert 0 < turn.action_probability <= 1


def _status(run: TrainingRun) -> str:
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run.pk)


def _wait(condition, timeout: float):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the worker")


def _play_one_turn(system: System) -> Turn:
    from .test_celery_tasks import play_turn, start_model_game

    for name in NAMES:
        Tangram.objects.get_or_create(name=name, defaults={"split": "train"})
    game, speaker = start_model_game(system, NAMES, "after-training")
    return play_turn(game, speaker, "pick A")


def test_round_exists_guard_is_per_study():
    system = _letters_system("guard")
    Round.objects.create(study=make_study("other"), index=1)
    run = _finished_run(system, "/runs/2/adapter")
    assert open_next_round(system.round.study, 0).index == 1
    assert run.policy_spec.endswith("+lora:/runs/2/adapter")


def test_the_decoding_setting_travels_to_the_manifest_and_a_mix_is_refused(tmp_path):
    system = _letters_system("decoding")
    study = system.round.study
    decode_study(study, decoder_spec="lexicon", kind="binary")
    Turn.objects.filter(game__system=system).update(
        action_probability=0.2, sampling_temperature=0.7, sampling_constrained=True
    )
    manifest = build_training_manifest(study, 0, "B-FFT")
    assert {(e["temperature"], e["constrained"]) for e in manifest.entries} == {(0.7, True)}
    assert {(e.temperature, e.constrained) for e in manifest_examples(manifest)} == {(0.7, True)}
    # One turn logged before the setting was recorded, among turns that record it.
    first = manifest.entries[0]
    Turn.objects.filter(pk=first["turn"]).update(sampling_temperature=None)
    named = f"game {first['game']} turn id {first['turn']}"
    with pytest.raises(TrainingError, match="cannot be reproduced") as error:
        launch_training_run(study, 0, "B-FFT", objective="kto", base=f"hf:{tmp_path}")
    assert "1 turn(s) that record none" in str(error.value) and named in str(error.value)
    assert not TrainingRun.objects.exists()


@pytest.mark.ml
def test_run_training_on_the_command_line_fails_with_the_runs_error(
    settings, tmp_path, tangram_images
):
    """A shell script or torchrun wrapper must see a failed run as a failure (exit status 1)."""
    settings.TANGRAM_DIR = tangram_images[0].rsplit("/", 1)[0]
    settings.TRAINING_DIR = tmp_path / "training"
    system = _letters_system("cli-fails")
    study = system.round.study
    decode_study(study, decoder_spec="lexicon", kind="binary")
    run = TrainingRun.objects.create(
        study=study,
        round_index=0,
        system_name=system.name,
        objective="fft",
        base_checkpoint=f"hf:{tmp_path}/no-such-model",
        prompt_format=system.prompt_format,
        manifest=build_training_manifest(study, 0, system.name),
        hyperparameters=training_config("fft", {"rehearse_seed_set": False}).as_dict(),
    )
    with pytest.raises(CommandError, match=rf"run {run.pk}: failed: .*no-such-model"):
        call_command("run_training", "--run", str(run.pk))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "no-such-model" in run.error
