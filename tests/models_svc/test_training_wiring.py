"""Wiring of the learning step that no loss test sees: where a run starts from, which games and
human turns it reads, that it rehearses D₀, and that RL/KTO subsample their negatives.

Each test here fails when the mistake in its docstring is put into the code (docs/learning.md,
"Which test guards which claim").
"""

from __future__ import annotations

import pytest

from games.models import Game, Tangram, Turn
from models_svc.models import TrainingRun
from models_svc.services import decode_study
from models_svc.training.manifests import (
    build_seed_manifest,
    build_training_manifest,
    build_validation_manifest,
)
from models_svc.training.runs import launch_training_run
from tests.factories import make_game, make_study, make_system

from .conftest import NAMES
from .test_seed_run import human_study

pytestmark = pytest.mark.django_db

PICKS = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
NO_REHEARSAL = {"rehearse_seed_set": False}


def letters_games(system, games: int = 2) -> list[Game]:
    """Games of three turns: "good…" (positive), then "no…" (negative), then no follow-up."""
    made = [
        make_game(system, PICKS, ["pick A", "good, now B", "no, not that"]) for _ in range(games)
    ]
    Turn.objects.filter(game__in=made).update(action_probability=0.5)
    return made


def test_fft_and_rl_start_from_the_base_and_kto_from_the_current_adapter(tmp_path):
    """Guards: FFT or RL continuing from the previous adapter instead of the base."""
    system = make_system(make_study("starts"), 1, "B-FFT")
    adapter = tmp_path / "runs" / "round-0" / "adapter"
    adapter.mkdir(parents=True)
    system.policy_checkpoint = f"hf:{tmp_path}+lora:{adapter}"
    system.save(update_fields=["policy_checkpoint"])
    letters_games(system)
    decode_study(system.round.study, decoder_spec="lexicon", kind="binary")
    starts = {}
    for objective in ("fft", "rl", "kto"):
        run = launch_training_run(
            system.round.study, 1, "B-FFT", objective=objective, overrides=NO_REHEARSAL
        )
        TrainingRun.objects.filter(pk=run.pk).update(status="cancelled")
        starts[objective] = (run.base_checkpoint, run.initial_adapter)
    base = f"hf:{tmp_path}"
    assert starts == {
        "fft": (base, ""),
        "rl": (base, ""),
        "kto": (base, str(adapter)),
    }


def _split_games(study, prefix: str, split: str, games: int) -> list[int]:
    Tangram.objects.bulk_create(
        [Tangram(name=f"{prefix}{i}", split=split) for i in range(10)], ignore_conflicts=True
    )
    human = make_system(study, 0, "HH")
    picks = [[f"{prefix}0"], [f"{prefix}0", f"{prefix}1"]]
    targets = [f"{prefix}0", f"{prefix}1", f"{prefix}2"]
    return [
        make_game(human, picks, ["the bird", "the boat"], targets=targets, tangram_prefix=prefix).pk
        for _ in range(games)
    ]


def test_validation_comes_from_main_split_human_games_and_d0_from_dev_ones():
    """Guards: validation drawn from the dev split (the tangrams π₀ was seeded on)."""
    study = make_study("splits")
    dev = _split_games(study, "page6-", "dev", 2)
    main = _split_games(study, "page7-", "train", 3) + _split_games(study, "page5-", "test", 1)
    validation = build_validation_manifest(study, "respect-2024")
    seed = build_seed_manifest(study, 0)
    assert sorted({e["game"] for e in validation.entries}) == sorted(main)
    assert len(validation.entries) == 2 * 4  # both turns of every main-split game are good
    assert sorted({e["game"] for e in seed.entries}) == sorted(dev)


def test_control_games_are_pooled_only_before_the_system_first_appears():
    """Guards: CONTROL's games pooled in rounds where the system plays (or never pooled)."""
    study = make_study("pooling")
    control = {index: make_system(study, index, "CONTROL") for index in (0, 1, 2)}
    learner = {index: make_system(study, index, "B-FFT") for index in (1, 2)}
    games = {
        ("CONTROL", 0): letters_games(control[0], 2),
        ("CONTROL", 1): letters_games(control[1], 1),
        ("CONTROL", 2): letters_games(control[2], 1),
        ("B-FFT", 1): letters_games(learner[1], 1),
        ("B-FFT", 2): letters_games(learner[2], 1),
    }
    decode_study(study, decoder_spec="lexicon", kind="binary")

    def first_turns(*keys) -> list[int]:
        return sorted(
            Turn.objects.filter(
                game__in=[g for k in keys for g in games[k]], index__lt=2
            ).values_list("pk", flat=True)
        )

    round_one = build_training_manifest(study, 1, "B-FFT")
    assert round_one.summary["systems"] == ["CONTROL@0", "B-FFT@1"]
    assert sorted(e["turn"] for e in round_one.entries) == first_turns(("CONTROL", 0), ("B-FFT", 1))
    round_two = build_training_manifest(study, 2, "B-FFT")
    assert round_two.summary["systems"] == ["CONTROL@0", "B-FFT@1", "B-FFT@2"]
    assert sorted(e["turn"] for e in round_two.entries) == first_turns(
        ("CONTROL", 0), ("B-FFT", 1), ("B-FFT", 2)
    )


def test_every_run_rehearses_the_d0_of_its_own_prompt_format(tmp_path):
    """Guards: a run launched without D₀ (or with another format's D₀) rehearsing nothing."""
    study = human_study("rehearse", games=2)
    learner = study.rounds.get(index=0).systems.get(name="B-FFT")
    letters_games(learner)
    decode_study(study, decoder_spec="lexicon", kind="binary")
    own = build_seed_manifest(study, 0)
    build_seed_manifest(study, 0, prompt_format="platform-p1")  # newer, another format
    for objective in ("fft", "rl", "kto"):
        run = launch_training_run(study, 0, "B-FFT", objective=objective, base=f"hf:{tmp_path}")
        TrainingRun.objects.filter(pk=run.pk).update(status="cancelled")
        assert run.seed_manifest == own, objective
        assert run.hyperparameters["rehearse_seed_set"] is True


# -- the trainer: what one epoch's plan holds, read from the total steps it reports ----------------


class FirstStep:
    """Progress that records the total steps of the plan, then cancels after the first step."""

    def __init__(self) -> None:
        self.total: int | None = None

    def step(self, seed, epoch, step, total, loss) -> None:
        self.total = total

    def epoch(self, record) -> None:
        return None

    def diagnostics(self, document) -> None:
        return None

    def cancelled(self) -> bool:
        return self.total is not None


def _example(key: str, letter: str, label: str = "positive", probability: float | None = 0.5):
    from games.actions import Action, format_action
    from models_svc.training.examples import Example

    return Example(
        key=key,
        group=key,  # one example per group: with effective_batch 1, one step per example
        images=tuple(NAMES),
        history=(),
        selection=(),
        utterance=f"pick {letter}",
        action=format_action(Action(select=frozenset(letter))),
        label=label,
        probability=probability,
        prompt_format="respect-2024",
    )


def _planned_steps(tiny_idefics2, tangram_images, tmp_path, objective, train, seed_set, **extra):
    from models_svc.training.config import training_config
    from models_svc.training.trainer import TrainingCancelled, TrainingJob
    from models_svc.training.trainer import train as run_trainer

    config = training_config(
        objective,
        {"epochs": 1, "seeds": 1, "effective_batch": 1, "augment_permutations": False, **extra},
    )
    job = TrainingJob(
        base=tiny_idefics2,
        out_dir=str(tmp_path / f"{objective}-{len(seed_set)}-{extra}"),
        config=config,
        train=train,
        image_paths=dict(zip(NAMES, tangram_images, strict=True)),
        seed_set=seed_set,
        run_seed="wiring",
        device="cpu",
    )
    progress = FirstStep()
    with pytest.raises(TrainingCancelled):
        run_trainer(job, progress)
    return progress.total


@pytest.mark.ml
def test_the_trainer_rehearses_d0_and_subsamples_negatives_to_five_to_four(
    tiny_idefics2, tangram_images, tmp_path
):
    """Guards: the trainer dropping D₀, and RL/KTO training on every negative."""
    positives = [_example(f"p{i}", "ABCDE"[i]) for i in range(5)]
    negatives = [_example(f"n{i}", "FGHIJ"[i % 5], "negative") for i in range(10)]
    seed_set = [_example(f"d{i}", "ABC"[i], probability=None) for i in range(3)]
    train = positives + negatives
    steps = {
        # 5 positives + round(5 · 4 / 5) = 4 of the 10 negatives + 3 D₀ turns
        "rl": _planned_steps(tiny_idefics2, tangram_images, tmp_path, "rl", train, seed_set),
        "kto": _planned_steps(tiny_idefics2, tangram_images, tmp_path, "kto", train, seed_set),
        # FFT trains on the positives only; rehearsal off drops D₀
        "fft, no rehearsal": _planned_steps(
            tiny_idefics2, tangram_images, tmp_path, "fft", train, seed_set, **NO_REHEARSAL
        ),
    }
    assert steps == {"rl": 12, "kto": 12, "fft, no rehearsal": 5}
