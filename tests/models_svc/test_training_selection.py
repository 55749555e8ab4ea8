"""Checkpoint selection's tie-breaking, and packing's fallback when prompts are not prefixes."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from models_svc.training.validation import select

from .test_trainer import random_game


def test_selection_breaks_ties_by_loss_then_earliest_seed_then_earliest_epoch():
    history = [
        {"seed": 0, "epoch": 0, "loss": 1.0, "exact_match": 0.5},
        {"seed": 0, "epoch": 1, "loss": 0.8, "exact_match": 0.7},
        {"seed": 1, "epoch": 0, "loss": 0.6, "exact_match": 0.7},  # same match, lower loss
        {"seed": 1, "epoch": 1, "loss": 0.6, "exact_match": 0.7},  # same match and loss, later
        {"seed": 2, "epoch": 0, "loss": 0.6, "exact_match": 0.7},  # same, later seed
        {"seed": 2, "epoch": 1, "loss": 0.1, "exact_match": 0.6},  # lowest loss, worse match
    ]
    chosen = select(history)
    assert (chosen["seed"], chosen["epoch"], chosen["rule"]) == (
        1,
        0,
        "best validation exact match",
    )
    assert select(list(reversed(history)))["seed"] == 1
    without = [{**h, "exact_match": None} for h in history]
    chosen = select(without)
    assert (chosen["seed"], chosen["epoch"]) == (0, 1)
    assert chosen["rule"] == "last epoch (no validation turns)"


@pytest.mark.ml
def test_a_group_whose_prompts_are_not_prefixes_is_scored_one_example_at_a_time(
    tiny_idefics2, tangram_images, tmp_path
):
    import torch

    from models_svc.training.components import StepTerms, item_losses, objective_for
    from models_svc.training.config import training_config
    from models_svc.training.modelling import load_trainable, policies_for
    from models_svc.training.packing import Scorer
    from models_svc.training.planning import Item
    from models_svc.training.trainer import TrainingJob

    from .conftest import NAMES

    paths = dict(zip(NAMES, tangram_images, strict=True))
    rng = random.Random(4)
    first, second = random_game(0, rng, turns=2), random_game(1, rng, turns=3)
    # One "game" whose later turn does not extend the earlier one's prompt.
    examples = [first[1], replace(second[2], group=first[1].group)]
    config = training_config("fft", {"lora_dropout": 0.0})
    job = TrainingJob(tiny_idefics2, str(tmp_path), config, examples, paths, device="cpu")
    loaded = load_trainable(job, "")
    scorer = Scorer(policies_for(loaded, examples, config), paths)
    sequences = scorer.sequences(examples, packing=True)
    assert len(sequences) == 2
    for sequence in sequences:
        [span] = sequence.spans
        assert sequence.input_ids[: span.start] == scorer.prompt_ids(examples[span.example])
    items = [Item(e) for e in examples]
    with torch.no_grad():
        packed = item_losses(scorer, items, objective_for(config), StepTerms())
        alone = [
            item_losses(scorer, [item], objective_for(replace(config, packing=False)), StepTerms())
            for item in items
        ]
    assert [float(x) for x in packed] == pytest.approx([float(x[0]) for x in alone], abs=1e-6)
