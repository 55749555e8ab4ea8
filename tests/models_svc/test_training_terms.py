"""The off-policy terms of RL and KTO: computed on the prompt each turn was acted under, at the
temperature its p_t was sampled at, with dropout off; recorded as diagnostics at the start and
per epoch. p_t comes from the real acting code path (``HFPolicy.score``) of the very model the
trainer starts from, so the exact values are c = 1 and r = 0."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
import torch

from models_svc.training.components import StepTerms, objective_for
from models_svc.training.config import training_config
from models_svc.training.modelling import load_trainable, policies_for
from models_svc.training.packing import Scorer, policy_input
from models_svc.training.planning import Item
from models_svc.training.trainer import TrainingJob, train

from .test_trainer import random_game

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def paths(tangram_images):
    from .conftest import NAMES

    return dict(zip(NAMES, tangram_images, strict=True))


def logged_by(model, adapter, paths, *, temperature, games=4, turns=3, seed=11):
    """Examples whose p_t the policy ``model`` (+ ``adapter``) logged at ``temperature``:
    scored through the policy's own code path, the decoding setting recorded with them."""
    from models_svc.backends.hf_policy import HFPolicy

    policy = HFPolicy(
        model,
        adapter=adapter or None,
        device="cpu",
        temperature=temperature,
        prompt_format="respect-2024",
    )
    rng = random.Random(seed)
    examples = [e for g in range(games) for e in random_game(g, rng, turns=turns)]
    labels = ["positive", "negative"]
    return [
        replace(
            e,
            label=labels[i % 2],
            probability=policy.score(policy_input(e, paths), e.action),
            temperature=temperature,
            constrained=True,
        )
        for i, e in enumerate(examples)
    ]


def _assert_identity(record, objective):
    if objective == "rl":
        weights = record["rl_coefficient"]
        assert weights["n"] > 0
        assert weights["min"] == pytest.approx(1.0, abs=1e-3)
        assert weights["max"] == pytest.approx(1.0, abs=1e-3)
        assert weights["effective_sample_size"] == pytest.approx(weights["n"], rel=1e-3)
        assert record["kto_log_ratio"] is None
    else:
        ratios = record["kto_log_ratio"]
        assert ratios["n"] > 0
        assert ratios["min"] == pytest.approx(0.0, abs=1e-3)
        assert ratios["max"] == pytest.approx(0.0, abs=1e-3)
        assert record["kto_reference_point"]["max"] == pytest.approx(0.0, abs=1e-3)
        assert record["rl_coefficient"] is None


@pytest.mark.parametrize(
    ("objective", "deployed"), [("rl", 1.0), ("kto", 1.0), ("rl", 0.7), ("kto", 0.7)]
)
def test_c_is_one_and_r_is_zero_when_the_trainer_starts_from_the_logging_policy(
    tiny_idefics2, tiny_lora, paths, tmp_path, objective, deployed
):
    # RL starts from the base weights; KTO continues from the deployed adapter. Deployed at
    # 0.7 and trained with a config that says 1.0: the recorded temperature is what counts.
    adapter = tiny_lora if objective == "kto" else ""
    examples = logged_by(tiny_idefics2, adapter, paths, temperature=deployed)
    config = training_config(
        objective,
        {
            "epochs": 1,
            "seeds": 1,
            "effective_batch": 3,
            "learning_rate": 0.0,  # the model stays the logging policy all epoch
            "augment_permutations": True,
            "temperature": 1.0,
        },
    )
    assert config.lora_dropout > 0  # dropout must be off in every no-gradient pass
    job = TrainingJob(
        tiny_idefics2, str(tmp_path), config, examples, paths, initial_adapter=adapter, device="cpu"
    )
    result = train(job)
    diagnostics = result.diagnostics
    _assert_identity(diagnostics["start"], objective)
    # Every step of the epoch trained on permuted games, and computed c and r on the stored ones.
    [epoch] = diagnostics["epochs"]
    assert (epoch["seed"], epoch["epoch"]) == (0, 0)
    _assert_identity(epoch, objective)
    assert diagnostics["label_smoothing"] == {
        "objective": config.label_smoothing,
        "rehearsal": config.label_smoothing,
    }
    assert diagnostics["selection_decoding"] == "greedy decoding constrained to valid actions"


def test_a_training_set_mixing_recorded_and_unrecorded_temperatures_is_refused(
    tiny_idefics2, paths, tmp_path
):
    examples = logged_by(tiny_idefics2, "", paths, temperature=0.7, games=2)
    examples[1] = replace(examples[1], temperature=None)  # a negative example
    examples[3] = replace(examples[3], constrained=None, temperature=None)
    job = TrainingJob(
        tiny_idefics2, str(tmp_path / "out"), training_config("kto"), examples, paths, device="cpu"
    )
    with pytest.raises(ValueError, match="cannot be reproduced") as error:
        train(job)
    assert f"{examples[1].key}, {examples[3].key}" in str(error.value)
    unconstrained = [replace(e, constrained=False) if i == 1 else e for i, e in enumerate(examples)]
    job = replace(job, train=unconstrained)
    with pytest.raises(ValueError, match="without the valid-action constraint") as error:
        train(job)
    assert examples[1].key in str(error.value)
    assert not (tmp_path / "out").exists()


# -- wiring: each loss against an independent computation -----------------------------------------


@pytest.fixture
def scored(tiny_idefics2, paths, tmp_path):
    """A trainable model with a non-zero adapter, its scorer, and examples whose p_t differ from
    the model's own probabilities by known factors."""
    from models_svc.backends.hf_policy import HFPolicy

    config = training_config("rl", {"lora_dropout": 0.0})
    probe = logged_by(tiny_idefics2, "", paths, temperature=1.0, games=2)
    job = TrainingJob(tiny_idefics2, str(tmp_path), config, probe, paths, device="cpu")
    loaded = load_trainable(job, "")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in loaded.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    policy = HFPolicy.from_loaded(loaded, "probe", "probe", prompt_format="respect-2024")
    loaded.model.eval()
    pi = {e.key: policy.score(policy_input(e, paths), e.action) for e in probe}
    loaded.model.train()
    # p_t = π·e^{+0.8} for positives, π·e^{−0.5} for negatives: r = ∓0.8 / +0.5, c = e^{0.5}.
    shifts = {"positive": 0.8, "negative": -0.5}
    examples = [replace(e, probability=pi[e.key] * math.exp(shifts[e.label])) for e in probe]
    scorer = Scorer(policies_for(loaded, examples, config), paths)
    return loaded, scorer, examples, pi


def _token_terms(scorer, example):
    """−log P / T and H̃ of the example from plain cross-entropy (torch's label smoothing):
    ce(ε=0) = −log P / T and ce(ε=1) = H̃."""
    sequence = scorer.single(example, 0)
    logits = scorer.logits(sequence, example)[0]
    span = sequence.spans[0]
    rows = logits[span.start - 1 : span.start - 1 + len(span.targets)].float()
    targets = torch.tensor(span.targets)
    nll = torch.nn.functional.cross_entropy(rows, targets)
    uniform = torch.nn.functional.cross_entropy(rows, targets, label_smoothing=1.0)
    return float(nll), float(uniform)


def test_rl_losses_use_p_t_and_the_reward_sign(scored):
    loaded, scorer, examples, pi = scored
    epsilon = 0.05
    config = training_config(
        "rl", {"lora_dropout": 0.0, "label_smoothing": epsilon, "rl_coefficient_cap": 100.0}
    )
    objective = objective_for(config)
    items = [Item(e) for e in examples]
    terms = objective.step_terms(scorer, items, {}, 1)
    from models_svc.training.components import item_losses

    losses = item_losses(scorer, items, objective, terms)
    for example, loss in zip(examples, losses, strict=True):
        nll, uniform = _token_terms(scorer, example)
        if example.label == "positive":  # R = 1, c = 1: FFT's loss
            expected = (1 - epsilon) * nll + epsilon * uniform
        else:  # R = −0.1, c = π / p_t = e^{0.5} (p_t is above the floor here or c is floored)
            c = pi[example.key] / max(example.probability, config.rl_propensity_floor)
            expected = (1 - epsilon) * (c * -0.1 * nll) + epsilon * 0.1 * uniform
            assert c != pytest.approx(1.0, abs=0.05)
        assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-6), example.key


def test_kto_losses_use_log_p_t_as_reference_and_the_right_side(scored):
    loaded, scorer, examples, pi = scored
    epsilon, beta = 0.1, 0.5
    config = training_config("kto", {"lora_dropout": 0.0})
    objective = objective_for(config)
    items = [Item(e) for e in examples]
    prepared = objective.prepare(scorer, examples, "0")
    terms = objective.step_terms(scorer, items, prepared, 1)
    assert terms.z == 0.0  # the references were computed by this very model
    from models_svc.training.components import item_losses

    losses = item_losses(scorer, items, objective, terms)
    for example, loss in zip(examples, losses, strict=True):
        _, uniform = _token_terms(scorer, example)
        r = math.log(pi[example.key]) - math.log(example.probability)
        sigmoid = 1 / (1 + math.exp(-beta * (r if example.label == "positive" else -r)))
        expected = (1 - epsilon) * (1 - sigmoid) + epsilon * uniform
        assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-6), example.key
    assert {e.label for e in examples} == {"positive", "negative"}


def test_kto_reference_point_compares_mismatched_completions_with_the_starting_policy(scored):
    from models_svc.backends.hf_policy import HFPolicy

    loaded, scorer, examples, _ = scored
    config = training_config("kto", {"lora_dropout": 0.0})
    objective = objective_for(config)
    prepared = objective.prepare(scorer, examples, "0")
    policy = HFPolicy.from_loaded(loaded, "start", "start", prompt_format="respect-2024")
    loaded.model.eval()
    for example in examples:
        action, reference = prepared["kl_references"][example.key]
        assert action != example.action
        item = policy_input(example, scorer.image_paths)
        assert reference == pytest.approx(math.log(policy.score(item, action)), abs=1e-4)
    loaded.model.train()
    # Move the policy; z is the mean of log π_now(y'|x) − log π_start(y'|x), clamped at 0.
    for seed in range(10):
        generator = torch.Generator().manual_seed(100 + seed)
        with torch.no_grad():
            for name, parameter in loaded.model.named_parameters():
                if "lora_B" in name:
                    parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3)
        loaded.model.eval()
        # A new policy object: HFPolicy caches image features, which the move changed.
        policy = HFPolicy.from_loaded(loaded, "now", "now", prompt_format="respect-2024")
        now = [
            math.log(
                policy.score(
                    policy_input(e, scorer.image_paths), prepared["kl_references"][e.key][0]
                )
            )
            - prepared["kl_references"][e.key][1]
            for e in examples
        ]
        loaded.model.train()
        if sum(now) / len(now) > 0.01:
            break
    else:
        pytest.fail("no perturbation raised the mismatched completions' probability")
    terms = objective.step_terms(scorer, [Item(e) for e in examples], prepared, 1)
    assert terms.z == pytest.approx(sum(now) / len(now), abs=1e-4)
    assert isinstance(terms, StepTerms)
