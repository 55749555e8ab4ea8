"""The LoRA trainer: one code path for the CPU, one GPU and data parallel (worker code: torch).

A job is plain data (``TrainingJob``): base checkpoint, optional starting adapter, examples,
hyperparameters, output folder. Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1)
every process builds the same plan and scores its share of each step's groups; gradients are
summed across processes before each optimiser step, so the loss curve is that of one process
with the same global batch. Each step averages the per-example losses over the step's
examples; a step gathers whole games (packed sequences) until it holds ``effective_batch``
examples.

After every epoch the adapter, optimiser, scheduler and random states are saved under
``OUT/seed-S/epoch-E`` (``trainer_state.pt`` written last, so a folder is complete when it
exists), and the validation exact match under greedy constrained decoding is measured. A job
started again on the same folder resumes after its last complete epoch. The selected adapter
(best exact match over every seed and epoch) is copied to ``OUT/adapter`` in peft's layout.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from ..action_space import valid_actions
from ..backends.hf_common import LoadedModel, load_model
from ..backends.hf_policy import HFPolicy
from ..interfaces import CheckpointError
from .config import PROBABILITY_NEEDED, TrainingConfig
from .examples import Example, permuted
from .objectives import (
    constrained_log_prob,
    fft_loss,
    kto_losses,
    reward_for,
    rl_coefficient,
    rl_loss,
    subsample_negatives,
    target_token_terms,
)
from .packing import Scorer, policy_input, span_logits

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"


class TrainingCancelled(RuntimeError):
    """The run was cancelled between two steps."""


@dataclass
class TrainingJob:
    base: str
    out_dir: str
    config: TrainingConfig
    train: list[Example]
    image_paths: dict[str, str]
    seed_set: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    initial_adapter: str = ""
    run_seed: str = "0"
    device: str = "auto"


@dataclass
class Item:
    """An example in a step: ``rehearsal`` (D₀, cross-entropy) or the run's objective."""

    example: Example
    rehearsal: bool = False


@dataclass
class TrainingResult:
    adapter: str
    selected: dict
    history: list[dict]
    resumed_from: str = ""


class ProgressReporter(Protocol):
    """What a trainer reports to: ``Progress`` ignores it, ``runs.DatabaseProgress`` stores it."""

    def step(self, seed: int, epoch: int, step: int, total: int, loss: float) -> None: ...

    def epoch(self, record: dict) -> None: ...

    def cancelled(self) -> bool: ...


class Progress:
    """What a trainer reports; the default does nothing."""

    def step(self, seed: int, epoch: int, step: int, total: int, loss: float) -> None:
        return None

    def epoch(self, record: dict) -> None:
        return None

    def cancelled(self) -> bool:
        return False


# -- the plan -------------------------------------------------------------------------------------


def objective_examples(job: TrainingJob, seed: int) -> list[Example]:
    """The examples the objective trains on: FFT positives; RL every non-neutral example; KTO
    positives and negatives; negatives subsampled to the configured ratio (seeded per run)."""
    config = job.config
    if config.objective == "fft":
        return [e for e in job.train if e.label == "positive"]
    kept = [e for e in job.train if e.label in ("positive", "negative")]
    positives, negatives = config.negative_ratio
    keep = subsample_negatives(
        [e.label for e in kept],
        positives=positives,
        negatives=negatives,
        seed=f"{job.run_seed}:{seed}",
    )
    return [kept[i] for i in keep]


def check_probabilities(job: TrainingJob) -> None:
    """RL needs p_t for its negative examples, KTO for all: refuse naming the turns without."""
    needs = PROBABILITY_NEEDED[job.config.objective]
    missing = [e.key for e in job.train if e.label in needs and e.probability is None]
    if missing:
        raise ValueError(
            f"{job.config.objective.upper()} needs the logged probability p_t of "
            f"{len(missing)} turn(s) that have none ({', '.join(missing[:8])}"
            f"{', …' if len(missing) > 8 else ''}): train them with FFT, or compute p_t first"
        )


def epoch_steps(items: Sequence[Item], config: TrainingConfig, rng: random.Random) -> list[list]:
    """Groups of items per step: whole games, shuffled, gathered until a step holds
    ``effective_batch`` examples; each game permuted as a whole when augmenting."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.example.group, []).append(item)
    order = sorted(groups)
    rng.shuffle(order)
    steps: list[list[list[Item]]] = []
    current: list[list[Item]] = []
    count = 0
    for name in order:
        members = groups[name]
        if config.augment_permutations:
            members = _same_permutation(members, rng)
        current.append(members)
        count += len(members)
        if count >= config.effective_batch:
            steps.append(current)
            current, count = [], 0
    if current:
        steps.append(current)
    return steps


def _same_permutation(members: list[Item], rng: random.Random) -> list[Item]:
    """The group's items under one permutation of the images (the prompts stay prefixes)."""
    seed = rng.random()
    return [_permute(item, random.Random(seed)) for item in members]


def _permute(item: Item, rng: random.Random) -> Item:
    return Item(permuted(item.example, rng), item.rehearsal)


def plan(job: TrainingJob, seed: int, items: Sequence[Item]) -> list[list[list[list[Item]]]]:
    """Every epoch's steps for one seed (deterministic in the run seed, seed and epoch)."""
    return [
        epoch_steps(items, job.config, random.Random(f"{job.run_seed}:{seed}:{epoch}"))
        for epoch in range(job.config.epochs)
    ]


# -- the model ------------------------------------------------------------------------------------


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        # NCCL reduces only CUDA tensors; the step loss and KTO's KL sums are CPU tensors.
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(job: TrainingJob) -> str:
    if job.device == "auto" and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu" if job.device == "auto" else job.device


def load_trainable(job: TrainingJob, adapter: str) -> LoadedModel:
    """The base model with a trainable LoRA adapter: ``adapter`` if given, else a new one."""
    loaded = load_model(
        job.base, what="base policy", device=_device(job), dtype=job.config.dtype, need_images=True
    )
    return with_lora(loaded, job.config, adapter, job.base)


def with_lora(loaded: LoadedModel, config: TrainingConfig, adapter: str, base: str) -> LoadedModel:
    """A loaded base model wrapped for training: the saved ``adapter`` made trainable, or a new
    LoRA adapter on the configured target modules; gradient checkpointing on GPU."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter:
        try:
            model = PeftModel.from_pretrained(loaded.model, adapter, is_trainable=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"adapter {adapter} does not fit the base model {base}: {exc}"
            ) from exc
    else:
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules,
        )
        model = get_peft_model(loaded.model, lora)
    if config.gradient_checkpointing and loaded.device.type == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.to(loaded.device)
    model.train()
    return LoadedModel(model, loaded.tokenizer, loaded.processor, loaded.device, True)


def policies_for(loaded: LoadedModel, examples: Sequence[Example], config) -> dict[str, HFPolicy]:
    formats = {e.prompt_format for e in examples}
    return {
        name: HFPolicy.from_loaded(
            loaded, "training", "training", temperature=config.temperature, prompt_format=name
        )
        for name in formats
    }


def _optimizer(model, config: TrainingConfig, total_steps: int):
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(
            parameters, lr=config.learning_rate, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.RMSprop(
            parameters, lr=config.learning_rate, weight_decay=config.weight_decay
        )
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    if config.schedule == "cosine":
        scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
    return optimizer, scheduler


# -- losses ---------------------------------------------------------------------------------------


def item_losses(
    scorer: Scorer, items: Sequence[Item], config: TrainingConfig, kl_shift: float
) -> list[torch.Tensor]:
    """The loss of each item of one group, from packed (or single) forward passes."""
    examples = [item.example for item in items]
    losses: list[torch.Tensor | None] = [None] * len(items)
    for sequence in scorer.sequences(examples, packing=config.packing):
        logits = scorer.logits(sequence, examples[sequence.spans[0].example])
        for span in sequence.spans:
            item = items[span.example]
            rows = span_logits(logits, span)
            targets = torch.tensor(span.targets, device=rows.device)
            log_prob, smoothing = target_token_terms(rows, targets)
            tokens = len(span.targets)
            if item.rehearsal or config.objective == "fft":
                losses[span.example] = fft_loss(log_prob, tokens, smoothing, config.label_smoothing)
                continue
            constrained = constrained_log_prob(rows, targets, span.allowed, config.temperature)
            if config.objective == "rl":
                reward = reward_for(item.example.label)
                coefficient = rl_coefficient(
                    constrained,
                    item.example.probability if item.example.probability is not None else 1.0,
                    reward,
                    floor=config.rl_propensity_floor,
                    cap=config.rl_coefficient_cap,
                )
                losses[span.example] = rl_loss(
                    log_prob, tokens, smoothing, reward, coefficient, config.label_smoothing
                )
            else:
                reference = torch.tensor(math.log(max(item.example.probability or 0.0, 1e-30)))
                loss, _ = kto_losses(
                    constrained[None],
                    reference[None].to(constrained.device),
                    torch.tensor([item.example.label == "positive"], device=constrained.device),
                    torch.tensor([kl_shift]),
                    torch.tensor([0.0]),
                    beta=config.kto_beta,
                    desirable_weight=config.kto_desirable_weight,
                    undesirable_weight=config.kto_undesirable_weight,
                )
                losses[span.example] = loss[0] + config.label_smoothing * smoothing
    return [loss for loss in losses if loss is not None]


def action_log_prob(scorer: Scorer, example: Example, action: str, temperature: float) -> float:
    """log π(action | example's prompt) under the constrained distribution (no gradient)."""
    from dataclasses import replace

    probe = replace(example, action=action)
    with torch.no_grad():
        sequence = scorer.single(probe, 0)
        logits = scorer.logits(sequence, probe)
        span = sequence.spans[0]
        rows = span_logits(logits, span)
        targets = torch.tensor(span.targets, device=rows.device)
        return float(constrained_log_prob(rows, targets, span.allowed, temperature))


def mismatched_action(example: Example, others: Sequence[Example], rng: random.Random) -> str:
    """Another example's action valid for this selection, else a random other valid action:
    the unrelated completion KTO's reference point is estimated from."""
    valid = set(valid_actions(example.selection, len(example.images)))
    candidates = sorted({o.action for o in others if o.action in valid} - {example.action})
    if not candidates:
        candidates = sorted(valid - {example.action})
    return rng.choice(candidates)


def kl_estimate(
    scorer: Scorer,
    probes: Sequence[tuple[Example, str, float]],
    temperature: float,
    world: int,
) -> float:
    """KTO's z from ``(example, mismatched action, its reference log-probability)`` probes: the
    mean of log π(y'|x) − log π_ref(y'|x) over every process's probes, clamped at 0. Probes use
    the examples as stored (unpermuted), as their references were computed."""
    total = torch.zeros(2, dtype=torch.float64)
    for example, action, reference in probes:
        value = action_log_prob(scorer, example, action, temperature)
        total += torch.tensor([value - reference, 1.0], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(total)
    return max(0.0, float(total[0] / total[1])) if total[1] else 0.0


# -- validation -----------------------------------------------------------------------------------


def exact_match(loaded: LoadedModel, job: TrainingJob, batch: int = 16) -> float | None:
    """Share of validation turns whose greedy constrained action is the human's action."""
    examples = job.validation[: job.config.max_validation or None]
    if not examples:
        return None
    loaded.model.eval()
    hits = 0
    try:
        for name in sorted({e.prompt_format for e in examples}):
            policy = HFPolicy.from_loaded(loaded, "validation", "validation", prompt_format=name)
            chosen = [e for e in examples if e.prompt_format == name]
            for start in range(0, len(chosen), batch):
                chunk = chosen[start : start + batch]
                inputs = [policy_input(e, job.image_paths) for e in chunk]
                decisions = policy.act(inputs, greedy=True)
                hits += sum(d.action == e.action for d, e in zip(decisions, chunk, strict=True))
    finally:
        loaded.model.train()
    return hits / len(examples)


# -- checkpoints ----------------------------------------------------------------------------------


def epoch_dir(job: TrainingJob, seed: int, epoch: int) -> Path:
    return Path(job.out_dir) / f"seed-{seed}" / f"epoch-{epoch}"


def last_checkpoint(job: TrainingJob) -> tuple[int, int] | None:
    """The (seed, epoch) of the latest complete checkpoint, or None."""
    done = []
    for state in Path(job.out_dir).glob(f"seed-*/epoch-*/{STATE_FILE}"):
        seed = int(state.parent.parent.name.removeprefix("seed-"))
        epoch = int(state.parent.name.removeprefix("epoch-"))
        done.append((seed, epoch))
    return max(done) if done else None


def save_checkpoint(job: TrainingJob, loaded, optimizer, scheduler, seed, epoch, state) -> None:
    folder = epoch_dir(job, seed, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(folder)
    payload = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        **state,
    }
    temporary = folder / (STATE_FILE + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(folder / STATE_FILE)


# -- the loop -------------------------------------------------------------------------------------


def train(job: TrainingJob, progress: ProgressReporter | None = None) -> TrainingResult:
    """Run every seed's epochs (resuming after the last complete checkpoint) and select the
    adapter with the best validation exact match."""
    progress = progress or Progress()
    check_probabilities(job)
    if not objective_examples(job, 0):
        raise ValueError(
            f"no {job.config.objective.upper()} examples: the training set holds "
            + ", ".join(f"{n} {label}" for label, n in _label_counts(job.train).items())
        )
    rank, world = _distributed()
    resume = last_checkpoint(job)
    history: list[dict] = []
    resumed_from = ""
    if resume is not None:
        state = torch.load(
            epoch_dir(job, *resume) / STATE_FILE, map_location="cpu", weights_only=False
        )
        history = list(state["history"])
        resumed_from = f"seed {resume[0]} epoch {resume[1]}"
    for seed in range(job.config.seeds):
        if resume is not None and seed < resume[0]:
            continue
        start_epoch = resume[1] + 1 if resume is not None and seed == resume[0] else 0
        if start_epoch >= job.config.epochs:
            continue
        history = _train_seed(job, seed, start_epoch, history, progress, rank, world)
    if world > 1:
        dist.barrier()
    selected = select(history)
    adapter = Path(job.out_dir) / "adapter"
    if rank == 0:
        source = epoch_dir(job, selected["seed"], selected["epoch"])
        if adapter.exists():
            shutil.rmtree(adapter)
        adapter.mkdir(parents=True)
        for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
            if (source / name).exists():
                shutil.copy2(source / name, adapter / name)
    return TrainingResult(str(adapter), selected, history, resumed_from)


def select(history: Sequence[dict]) -> dict:
    """The best epoch: highest validation exact match, then lowest loss; without validation,
    the last epoch of the first seed."""
    scored = [h for h in history if h.get("exact_match") is not None]
    if not scored:
        last = max((h for h in history if h["seed"] == 0), key=lambda h: h["epoch"])
        return {**last, "rule": "last epoch (no validation turns)"}
    best = max(scored, key=lambda h: (h["exact_match"], -h["loss"], -h["seed"], -h["epoch"]))
    return {**best, "rule": "best validation exact match"}


def _label_counts(examples: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    return counts


def _train_seed(job, seed, start_epoch, history, progress, rank, world) -> list[dict]:
    config = job.config
    torch.manual_seed(hash_seed(job.run_seed, seed))
    resume_dir = epoch_dir(job, seed, start_epoch - 1) if start_epoch else None
    initial = str(resume_dir) if resume_dir else job.initial_adapter
    loaded = load_trainable(job, initial)
    objective = objective_examples(job, seed)
    every = objective + job.seed_set + job.validation
    scorer = Scorer(policies_for(loaded, every, config), job.image_paths)
    stored = {e.key: e for e in objective}
    items = [Item(e) for e in objective]
    if config.rehearse_seed_set:
        items += [Item(e, rehearsal=True) for e in job.seed_set]
    epochs = plan(job, seed, items)
    total = sum(len(steps) for steps in epochs)
    optimizer, scheduler = _optimizer(loaded.model, config, total)
    kl_references: dict[str, tuple[str, float]] = {}
    if resume_dir is not None:
        state = torch.load(resume_dir / STATE_FILE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        kl_references = state.get("kl_references", {})
    elif config.objective == "kto":
        kl_references = _kl_references(scorer, objective, job, seed)
    step_number = sum(len(steps) for steps in epochs[:start_epoch])
    parameters = [p for p in loaded.model.parameters() if p.requires_grad]
    for epoch in range(start_epoch, config.epochs):
        losses = []
        for groups in epochs[epoch]:
            if progress.cancelled():
                raise TrainingCancelled(f"cancelled in seed {seed} epoch {epoch}")
            mine = groups[rank::world]
            count = sum(len(g) for g in groups)
            kl_shift = 0.0
            if config.objective == "kto":
                probes = [
                    (stored[item.example.key], *kl_references[item.example.key])
                    for group in mine
                    for item in group
                    if not item.rehearsal
                ]
                kl_shift = kl_estimate(scorer, probes, config.temperature, world)
            step_loss = torch.zeros(1, dtype=torch.float64)
            for group in mine:
                group_losses = item_losses(scorer, group, config, kl_shift)
                loss = torch.stack(group_losses).sum() / count
                loss.backward()
                step_loss += float(loss)
            if world > 1:
                for parameter in parameters:
                    if parameter.grad is None:
                        parameter.grad = torch.zeros_like(parameter)
                    dist.all_reduce(parameter.grad)
                dist.all_reduce(step_loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_number += 1
            losses.append(float(step_loss))
            progress.step(seed, epoch, step_number, total, float(step_loss))
        match = exact_match(loaded, job)
        record = {
            "seed": seed,
            "epoch": epoch,
            "loss": sum(losses) / len(losses) if losses else 0.0,
            "step_losses": losses,
            "exact_match": match,
        }
        history = [*history, record]
        if rank == 0:
            save_checkpoint(
                job,
                loaded,
                optimizer,
                scheduler,
                seed,
                epoch,
                {"history": history, "kl_references": kl_references},
            )
        if world > 1:
            dist.barrier()
        progress.epoch(record)
    return history


def _kl_references(scorer, objective, job, seed) -> dict[str, tuple[str, float]]:
    """Each KTO example's mismatched completion and its log-probability under the starting
    policy (the reference), computed once before the first step."""
    rng = random.Random(f"{job.run_seed}:{seed}:kl")
    references = {}
    for example in objective:
        action = mismatched_action(example, objective, rng)
        references[example.key] = (
            action,
            action_log_prob(scorer, example, action, job.config.temperature),
        )
    return references


def hash_seed(run_seed: str, seed: int) -> int:
    import hashlib

    digest = hashlib.sha256(f"{run_seed}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def job_document(job: TrainingJob) -> dict[str, Any]:
    """A job as JSON-ready data (for ``python -m models_svc.training.launch``)."""
    from dataclasses import asdict

    return {
        "base": job.base,
        "out_dir": job.out_dir,
        "config": job.config.as_dict(),
        "train": [asdict(e) for e in job.train],
        "seed_set": [asdict(e) for e in job.seed_set],
        "validation": [asdict(e) for e in job.validation],
        "image_paths": job.image_paths,
        "initial_adapter": job.initial_adapter,
        "run_seed": job.run_seed,
        "device": job.device,
    }


def job_from_document(document: dict[str, Any]) -> TrainingJob:
    from .config import training_config
    from .examples import example_from_dict

    config = dict(document["config"])
    objective = config.pop("objective")
    return TrainingJob(
        base=document["base"],
        out_dir=document["out_dir"],
        config=training_config(objective, config),
        train=[example_from_dict(e) for e in document["train"]],
        seed_set=[example_from_dict(e) for e in document["seed_set"]],
        validation=[example_from_dict(e) for e in document["validation"]],
        image_paths=document["image_paths"],
        initial_adapter=document.get("initial_adapter", ""),
        run_seed=document.get("run_seed", "0"),
        device=document.get("device", "auto"),
    )
