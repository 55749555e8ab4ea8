"""The LoRA trainer on tiny IDEFICS2 checkpoints: packing is exact, a policy learns, data parallel
equals one process, a crashed run resumes where it stopped, and bad input is refused.

Every test runs torch on one thread (restored afterwards): the numbers, and so the learning
curve, then do not depend on how many cores the machine has.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from games.actions import Action, format_action, parse_action
from models_svc.action_space import valid_action_list
from models_svc.interfaces import CheckpointError, PastTurn
from models_svc.training.components import objective_for
from models_svc.training.config import training_config
from models_svc.training.examples import Example
from models_svc.training.objectives import constrained_log_prob
from models_svc.training.packing import Scorer, policy_input, span_logits
from models_svc.training.trainer import (
    Item,
    TrainingJob,
    exact_match,
    item_losses,
    job_document,
    load_trainable,
    policies_for,
    train,
)

from .conftest import NAMES

pytestmark = pytest.mark.ml

LETTERS = "ABCDEFGHIJ"
WORDS = ("the bird", "man with a hat", "no the other one", "house", "try again", "yes")
DISTRIBUTED_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def paths(tangram_images):
    return dict(zip(NAMES, tangram_images, strict=True))


def random_game(number, rng, *, turns, prompt_format="respect-2024", size=10) -> list[Example]:
    """A game whose turns take random valid actions (selections and deselections of one to
    three letters), each turn's history the earlier turns, as in a real game."""
    images = tuple(rng.sample(NAMES, size))
    selection: frozenset[str] = frozenset()
    history: list[PastTurn] = []
    examples = []
    for turn in range(turns):
        actions = [
            a
            for a in valid_action_list(selection, size)
            if len(parse_action(a, size).select | parse_action(a, size).deselect) <= 3
        ]
        action = rng.choice(actions)
        utterance = f"{rng.choice(WORDS)} {turn}"
        state = tuple(sorted(selection))
        examples.append(
            Example(
                key=f"turn:{number}:{turn}",
                group=f"game:{number}",
                images=images,
                history=tuple(history),
                selection=state,
                utterance=utterance,
                action=action,
                prompt_format=prompt_format,
            )
        )
        history.append(PastTurn(state, utterance, action))
        parsed = parse_action(action, size)
        selection = (selection - parsed.deselect) | parsed.select
    return examples


def letters_game(number, rng, *, turns, size=10, prompt_format="respect-2024") -> list[Example]:
    """The synthetic letters round: the speaker says "pick C", the right action is "select C"."""
    images = tuple(rng.sample(NAMES, size))
    examples, history, selection = [], [], []
    for turn, letter in enumerate(rng.sample(LETTERS[:size], turns)):
        utterance, action = f"pick {letter}", format_action(Action(select=frozenset(letter)))
        examples.append(
            Example(
                key=f"turn:{number}:{turn}",
                group=f"game:{number}",
                images=images,
                history=tuple(history),
                selection=tuple(sorted(selection)),
                utterance=utterance,
                action=action,
                prompt_format=prompt_format,
            )
        )
        history.append(PastTurn(tuple(sorted(selection)), utterance, action))
        selection.append(letter)
    return examples


def labelled(examples, objective):
    """Labels and logged probabilities the objective needs, varied across the examples."""
    labels = {"fft": ["positive"], "rl": ["positive", "negative", "neutral"]}
    cycle = labels.get(objective, ["positive", "negative"])
    return [
        replace(e, label=cycle[i % len(cycle)], probability=0.05 + 0.1 * (i % 7))
        for i, e in enumerate(examples)
    ]


# -- 1. packing is exact --------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["fft", "rl", "kto"])
def test_packed_losses_equal_scoring_each_example_alone(tiny_idefics2, paths, tmp_path, objective):
    rng = random.Random(3)
    games = [
        random_game(0, rng, turns=3),
        random_game(1, rng, turns=4),
        # After a respect-2024 game over the same image files: its 224-pixel images must not be
        # reused for this format, which sizes images differently.
        random_game(2, rng, turns=3, prompt_format="platform-p1"),
        random_game(3, rng, turns=2),
    ]
    # Each game's turns out of order: the packer orders them itself.
    examples = labelled([e for game in games for e in reversed(game)], objective)
    config = training_config(objective, {"lora_dropout": 0.0, "label_smoothing": 0.05})
    job = TrainingJob(tiny_idefics2, str(tmp_path), config, examples, paths, device="cpu")
    loaded = load_trainable(job, "")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a non-zero adapter, so that its weights take part
        for name, parameter in loaded.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    scorer = Scorer(policies_for(loaded, examples, config), paths)

    sequences = scorer.sequences(examples, packing=True)
    assert len(sequences) == len(games)
    assert sorted(len(s.spans) for s in sequences) == sorted(len(g) for g in games)
    assert sorted(span.example for s in sequences for span in s.spans) == list(range(len(examples)))
    assert len(scorer.sequences(examples, packing=False)) == len(examples)

    items = [Item(e) for e in examples]
    objective = objective_for(config)
    terms = objective.step_terms(scorer, items, objective.prepare(scorer, examples, "0"), 1)
    packed = item_losses(scorer, items, objective, terms)
    packed_gradients = _gradients(loaded.model, packed)
    single = item_losses(scorer, items, objective_for(replace(config, packing=False)), terms)
    single_gradients = _gradients(loaded.model, single)
    assert len(packed) == len(single) == len(examples)
    torch.testing.assert_close(
        torch.stack(packed).detach(), torch.stack(single).detach(), rtol=0, atol=1e-5
    )
    assert packed_gradients.keys() == single_gradients.keys()
    for name, gradient in packed_gradients.items():
        difference = (gradient - single_gradients[name]).norm()
        assert difference <= 1e-4 * single_gradients[name].norm() + 1e-7, name

    # The constrained log-probability read from the packed spans is the one the policy itself
    # computes for the turn (its own prompt, batch encoding and image path).
    with torch.no_grad():
        for sequence in sequences:
            logits = scorer.logits(sequence, examples[sequence.spans[0].example])
            for span in sequence.spans:
                example = examples[span.example]
                packed_log_prob = constrained_log_prob(
                    span_logits(logits, span), torch.tensor(span.targets), span.allowed
                )
                policy = scorer.policy(example)
                expected = math.log(policy.score(policy_input(example, paths), example.action))
                assert float(packed_log_prob) == pytest.approx(expected, abs=1e-4), example.key


def _gradients(model, losses) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.stack(losses).sum().backward()
    gradients = {
        name: parameter.grad.clone()
        for name, parameter in model.named_parameters()
        if parameter.grad is not None
    }
    model.zero_grad(set_to_none=True)
    assert gradients
    return gradients


# -- 2. learning happens --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def letters_model(tmp_path_factory):
    """The tiny IDEFICS2 ``make_tiny_checkpoint`` writes: 64 wide, gentler query/key projections.

    On the fixture model (32 wide, very sharp random attention) no tuning taught LoRA the copy in
    the time a test has: the answer's attention sits on random tokens and barely moves."""
    from models_svc.tiny_models import learnable_tiny_idefics2

    return str(learnable_tiny_idefics2(tmp_path_factory.mktemp("letters-model")))


def test_fft_learns_the_letters_round_and_the_selected_adapter_reproduces_it(
    letters_model, paths, tmp_path
):
    from models_svc.backends.hf_policy import HFPolicy

    # Five images, one turn per game: the largest letters round the tiny model learns reliably in
    # a test's time (ten images or three-turn games need far more steps).
    rng = random.Random(0)
    make = {"turns": 1, "size": 5, "prompt_format": "platform-p1"}
    examples = [e for g in range(500) for e in letters_game(g, rng, **make)]
    validation = [e for g in range(1000, 1040) for e in letters_game(g, rng, **make)]
    config = training_config(
        "fft",
        {
            "epochs": 3,
            "seeds": 1,
            "effective_batch": 8,
            "learning_rate": 5e-3,
            "warmup_steps": 10,
            "lora_r": 32,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "augment_permutations": False,
        },
    )
    job = TrainingJob(
        letters_model,
        str(tmp_path / "run"),
        config,
        examples,
        paths,
        validation=validation,
        device="cpu",
    )
    before = exact_match(load_trainable(job, ""), job)
    assert before is not None and before <= 0.3

    result = train(job)

    assert [(h["seed"], h["epoch"]) for h in result.history] == [(0, 0), (0, 1), (0, 2)]
    assert all(len(h["step_losses"]) == math.ceil(500 / 8) for h in result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.selected["exact_match"] >= 0.9
    assert result.selected["exact_match"] == max(h["exact_match"] for h in result.history)

    policy = HFPolicy(
        letters_model, adapter=result.adapter, device="cpu", prompt_format="platform-p1"
    )
    assert policy.name == f"hf:{letters_model}+lora:{result.adapter}"
    hits = 0
    for start in range(0, len(validation), 16):
        chunk = validation[start : start + 16]
        decisions = policy.act([policy_input(e, paths) for e in chunk], greedy=True)
        hits += sum(d.action == e.action for d, e in zip(decisions, chunk, strict=True))
    assert hits / len(validation) == result.selected["exact_match"]


# -- 3. data parallel equals one process ----------------------------------------------------------

WORKER = """
import json, os, sys
from pathlib import Path

from models_svc.training.trainer import job_from_document, train

result = train(job_from_document(json.loads(Path(sys.argv[1]).read_text())))
Path(sys.argv[2]).write_text(json.dumps({"history": result.history, "rank": os.environ["RANK"]}))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_gloo_processes_train_exactly_as_one(tiny_idefics2, paths, tmp_path, monkeypatch):
    for name in DISTRIBUTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    rng = random.Random(5)
    # Seven games of three turns, nine examples a step: steps of 3, 3 and 1 games, so the
    # processes get 2 + 1 games, then 1 + 0 (the second only adds zero gradients).
    examples = [e for g in range(7) for e in letters_game(g, rng, turns=3)]
    validation = [e for g in range(100, 102) for e in letters_game(g, rng, turns=3)]
    config = training_config(
        "fft",
        {
            "epochs": 2,
            "seeds": 1,
            "effective_batch": 9,
            "learning_rate": 1e-2,
            "warmup_steps": 1,
            "lora_dropout": 0.0,
        },
    )
    job = TrainingJob(
        tiny_idefics2,
        str(tmp_path / "one"),
        config,
        examples,
        paths,
        validation=validation,
        device="cpu",
    )
    parallel = replace(job, out_dir=str(tmp_path / "two"))
    document = tmp_path / "job.json"
    document.write_text(json.dumps(job_document(parallel)))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    repository = Path(__file__).resolve().parents[2]
    python_path = os.pathsep.join(filter(None, [str(repository), os.environ.get("PYTHONPATH")]))
    port = _free_port()
    workers = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": python_path,
        }
        output = tmp_path / f"rank-{rank}.json"
        workers.append(
            (
                output,
                subprocess.Popen(
                    [sys.executable, str(script), str(document), str(output)],
                    env=env,
                    cwd=repository,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    try:
        # Meanwhile, the same job in this process (no WORLD_SIZE: one process).
        alone = train(job)
        logs = [worker.communicate(timeout=300)[0] for _, worker in workers]
    finally:
        for _, worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for (_, worker), log in zip(workers, logs, strict=True):
        assert worker.returncode == 0, log[-3000:]
    for name in DISTRIBUTED_VARIABLES:
        assert name not in os.environ

    assert [len(h["step_losses"]) for h in alone.history] == [3, 3]
    for output, _ in workers:
        history = json.loads(output.read_text())["history"]
        assert [(h["seed"], h["epoch"]) for h in history] == [(0, 0), (0, 1)]
        for mine, theirs in zip(alone.history, history, strict=True):
            assert theirs["step_losses"] == pytest.approx(mine["step_losses"], abs=1e-4)
            assert theirs["exact_match"] == mine["exact_match"]
    # Rank 0 alone wrote the checkpoints and the selected adapter.
    assert (tmp_path / "two" / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "two" / "seed-0" / "epoch-1" / "trainer_state.pt").exists()


# -- 4. resume ------------------------------------------------------------------------------------


def test_a_run_resumes_after_its_last_complete_epoch(tiny_idefics2, paths, tmp_path):
    rng = random.Random(7)
    examples = [e for g in range(4) for e in random_game(g, rng, turns=3)]
    validation = [e for g in range(100, 102) for e in random_game(g, rng, turns=2)]
    # Dropout and permutations on: the resumed epoch only matches with the random state restored.
    config = training_config(
        "fft", {"epochs": 2, "seeds": 1, "effective_batch": 6, "learning_rate": 1e-2}
    )
    job = TrainingJob(
        tiny_idefics2, str(tmp_path), config, examples, paths, validation=validation, device="cpu"
    )
    first = train(job)
    assert first.resumed_from == ""
    state = tmp_path / "seed-0" / "epoch-1" / "trainer_state.pt"
    state.unlink()  # as if the process died during epoch 1's checkpoint

    resumed = train(job)

    assert resumed.resumed_from == "seed 0 epoch 0"
    assert [(h["seed"], h["epoch"]) for h in resumed.history] == [(0, 0), (0, 1)]
    assert resumed.history[0] == first.history[0]
    assert resumed.history[1]["step_losses"] == pytest.approx(
        first.history[1]["step_losses"], abs=1e-5
    )
    assert resumed.history[1]["exact_match"] == first.history[1]["exact_match"]
    assert state.exists()
    assert (Path(resumed.adapter) / "adapter_config.json").exists()


# -- 5. bad input ---------------------------------------------------------------------------------


def test_rl_refuses_negative_examples_without_a_logged_probability(tiny_idefics2, paths, tmp_path):
    game = random_game(0, random.Random(1), turns=3)
    examples = [
        replace(game[0], label="positive"),
        replace(game[1], label="negative", probability=None),
        replace(game[2], label="negative", probability=0.2),
    ]
    job = TrainingJob(
        tiny_idefics2, str(tmp_path / "out"), training_config("rl"), examples, paths, device="cpu"
    )
    with pytest.raises(ValueError, match="p_t") as error:
        train(job)
    assert game[1].key in str(error.value)
    assert game[2].key not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_fft_refuses_a_training_set_without_positive_examples(tiny_idefics2, paths, tmp_path):
    examples = [
        replace(e, label="negative", probability=0.5)
        for e in random_game(0, random.Random(1), turns=3)
    ]
    job = TrainingJob(
        tiny_idefics2, str(tmp_path / "out"), training_config("fft"), examples, paths, device="cpu"
    )
    with pytest.raises(ValueError, match="no FFT examples.*3 negative"):
        train(job)
    assert not (tmp_path / "out").exists()


def test_an_initial_adapter_of_another_model_is_a_checkpoint_error(
    tiny_idefics2, letters_model, paths, tmp_path
):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    config = training_config("fft", {"epochs": 1, "seeds": 1})
    other = get_peft_model(
        AutoModelForImageTextToText.from_pretrained(letters_model),  # 64 wide, not 32
        LoraConfig(r=8, lora_alpha=8, target_modules=config.target_modules),
    )
    adapter = tmp_path / "other-adapter"
    other.save_pretrained(adapter)
    job = TrainingJob(
        tiny_idefics2,
        str(tmp_path / "out"),
        config,
        random_game(0, random.Random(1), turns=2),
        paths,
        initial_adapter=str(adapter),
        device="cpu",
    )
    with pytest.raises(CheckpointError, match="does not fit the base model"):
        train(job)
    assert not (tmp_path / "out" / "seed-0").exists()
