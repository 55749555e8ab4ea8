"""The LoRA trainer's loop: one code path for the CPU, one GPU and data parallel (worker code).

A job is plain data (``TrainingJob``): base checkpoint, optional starting adapter, examples,
hyperparameters, output folder and the identity of the run that owns the folder. The objective
is chosen once (``components.objective_for``) and the loop calls only its interface. Each step
averages the per-example losses over the step's examples; a step gathers whole games (packed
sequences) until it holds ``effective_batch`` examples (``planning``). Under
``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1) every process builds the same plan and
scores its share of each step's groups; DistributedDataParallel sums the gradients in buckets
during the last backward pass of the step, so the loss curve is that of one process with the
same global batch.

Before the first step of a seed the objective prepares (KTO's references) and, for the first
seed, the importance-weight diagnostics are recorded (``probes``); every epoch records them
again over the values its steps computed. After every epoch the adapter, optimiser, scheduler
and random states are saved under ``OUT/seed-S/epoch-E`` (``checkpoint_io``) and the validation
exact match is measured (``validation``). A job started again on the same folder resumes after
its last complete epoch, if the folder is its own. The selected adapter is copied to
``OUT/adapter``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from .checkpoint_io import (
    claim_folder,
    copy_adapter,
    epoch_dir,
    last_checkpoint,
    load_state,
    save_checkpoint,
)
from .components import Objective, losses_of, objective_for, rehearsal_for, spans_of
from .components import item_losses as item_losses
from .config import TrainingConfig
from .examples import Example
from .logged import LoggedTurn, logged_problem
from .modelling import data_parallel, distributed, load_trainable, make_optimizer, policies_for
from .packing import Scorer
from .planning import Item, hash_seed, label_counts, plan
from .probes import gather
from .validation import SELECTION_DECODING, exact_match, select

logger = logging.getLogger(__name__)

__all__ = [
    "Item",
    "TrainingJob",
    "exact_match",
    "item_losses",
    "load_trainable",
    "policies_for",
    "select",
    "train",
]


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
    # Who owns out_dir (the run's folder id, its manifests' hashes): checked before resuming.
    identity: dict[str, str] = field(default_factory=dict)


@dataclass
class TrainingResult:
    adapter: str
    selected: dict
    history: list[dict]
    resumed_from: str = ""
    diagnostics: dict = field(default_factory=dict)


class ProgressReporter(Protocol):
    """What a trainer reports to: ``Progress`` ignores it; ``progress.DatabaseProgress`` stores
    it on the run."""

    def step(self, seed: int, epoch: int, step: int, total: int, loss: float) -> None: ...

    def epoch(self, record: dict) -> None: ...

    def diagnostics(self, document: dict) -> None: ...

    def cancelled(self) -> bool: ...


class Progress:
    """What a trainer reports; the default does nothing."""

    def step(self, seed: int, epoch: int, step: int, total: int, loss: float) -> None:
        return None

    def epoch(self, record: dict) -> None:
        return None

    def diagnostics(self, document: dict) -> None:
        return None

    def cancelled(self) -> bool:
        return False


def check_logged(job: TrainingJob, objective: Objective) -> None:
    """The one p_t requirement check (``logged.logged_problem``), as a ValueError."""
    turns = [
        LoggedTurn(e.key, e.label, e.probability, e.temperature, e.constrained) for e in job.train
    ]
    problem = logged_problem(turns, objective.name, objective.logged_labels)
    if problem:
        raise ValueError(problem)


def new_diagnostics(config: TrainingConfig) -> dict[str, Any]:
    """The run's diagnostics document, before any value is recorded."""
    return {
        "start": None,
        "epochs": [],
        "label_smoothing": {
            "objective": config.label_smoothing,
            "rehearsal": config.label_smoothing,
        },
        "selection_decoding": SELECTION_DECODING,
    }


def train(job: TrainingJob, progress: ProgressReporter | None = None) -> TrainingResult:
    """Run every seed's epochs (resuming after the last complete checkpoint of this job's own
    folder) and select the adapter with the best validation exact match."""
    progress = progress or Progress()
    objective = objective_for(job.config)
    check_logged(job, objective)
    if not objective.examples(job.train, f"{job.run_seed}:0"):
        raise ValueError(
            f"no {objective.name.upper()} examples: the training set holds "
            + ", ".join(f"{n} {label}" for label, n in label_counts(job.train).items())
        )
    rank, world = distributed()
    if rank == 0:
        claim_folder(job.out_dir, job.identity)
    if world > 1:
        dist.barrier()
        claim_folder(job.out_dir, job.identity)
    resume = last_checkpoint(job.out_dir)
    history: list[dict] = []
    diagnostics = new_diagnostics(job.config)
    resumed_from = ""
    if resume is not None:
        state = load_state(job.out_dir, *resume)
        history = list(state["history"])
        diagnostics = state.get("diagnostics") or diagnostics
        resumed_from = f"seed {resume[0]} epoch {resume[1]}"
    for seed in range(job.config.seeds):
        if resume is not None and seed < resume[0]:
            continue
        start_epoch = resume[1] + 1 if resume is not None and seed == resume[0] else 0
        if start_epoch >= job.config.epochs:
            continue
        run = _SeedRun(job, objective, seed, progress, rank, world)
        history, diagnostics = run.train(start_epoch, history, diagnostics)
    if world > 1:
        dist.barrier()
    selected = select(history)
    adapter = Path(job.out_dir) / "adapter"
    if rank == 0:
        adapter = copy_adapter(job.out_dir, selected["seed"], selected["epoch"])
    return TrainingResult(str(adapter), selected, history, resumed_from, diagnostics)


class _SeedRun:
    """One seed's epochs: the model, its plan, optimiser and the objective's prepared state."""

    def __init__(self, job, objective: Objective, seed: int, progress, rank: int, world: int):
        self.job, self.objective, self.seed = job, objective, seed
        self.progress, self.rank, self.world = progress, rank, world
        self.rehearsal = rehearsal_for(job.config)
        self.seed_key = f"{job.run_seed}:{seed}"

    def train(self, start_epoch: int, history: list[dict], diagnostics: dict):
        job, config, objective = self.job, self.job.config, self.objective
        torch.manual_seed(hash_seed(job.run_seed, self.seed))
        resume = epoch_dir(job.out_dir, self.seed, start_epoch - 1) if start_epoch else None
        loaded = load_trainable(job, str(resume) if resume else job.initial_adapter)
        examples = objective.examples(job.train, self.seed_key)
        every = examples + job.seed_set + job.validation
        scorer = Scorer(policies_for(loaded, every, config), job.image_paths)
        scorer.model = data_parallel(loaded.model, self.world)
        items = [Item(e) for e in examples]
        if config.rehearse_seed_set:
            items += [Item(e, rehearsal=True) for e in job.seed_set]
        epochs = plan(config, job.run_seed, self.seed, items)
        total = sum(len(steps) for steps in epochs)
        optimizer, scheduler = make_optimizer(loaded.model, config, total)
        if resume is not None:
            state = load_state(job.out_dir, self.seed, start_epoch - 1)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            prepared = state.get("prepared") or {}
        else:
            prepared = objective.prepare(scorer, examples, self.seed_key)
            if diagnostics["start"] is None:
                terms = objective.step_terms(scorer, [Item(e) for e in examples], prepared, 1)
                diagnostics["start"] = objective.summarise(objective.diagnostics(examples, terms))
                self.progress.diagnostics(diagnostics)
        step_number = sum(len(steps) for steps in epochs[:start_epoch])
        for epoch in range(start_epoch, config.epochs):
            losses: list[float] = []
            values: dict[str, list] = {}
            for groups in epochs[epoch]:
                if self.progress.cancelled():
                    raise TrainingCancelled(f"cancelled in seed {self.seed} epoch {epoch}")
                losses.append(self._step(scorer, groups, prepared, values))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step_number += 1
                self.progress.step(self.seed, epoch, step_number, total, losses[-1])
            record = {
                "seed": self.seed,
                "epoch": epoch,
                "loss": sum(losses) / len(losses) if losses else 0.0,
                "step_losses": losses,
                "exact_match": exact_match(loaded, job),
            }
            history = [*history, record]
            summary = objective.summarise(gather(values, self.world))
            diagnostics = {
                **diagnostics,
                "epochs": [
                    *[
                        d
                        for d in diagnostics["epochs"]
                        if (d["seed"], d["epoch"]) != (self.seed, epoch)
                    ],
                    {"seed": self.seed, "epoch": epoch, **summary},
                ],
            }
            if self.rank == 0:
                save_checkpoint(
                    job.out_dir,
                    loaded.model,
                    optimizer,
                    scheduler,
                    self.seed,
                    epoch,
                    {"history": history, "prepared": prepared, "diagnostics": diagnostics},
                )
            if self.world > 1:
                dist.barrier()
            self.progress.epoch(record)
            self.progress.diagnostics(diagnostics)
        return history, diagnostics

    def _step(self, scorer: Scorer, groups, prepared: dict, values: dict[str, list]) -> float:
        """Forward and backward over this process's share of a step; the step's loss."""
        mine = groups[self.rank :: self.world]
        count = sum(len(g) for g in groups)
        flat = [item for group in mine for item in group]
        terms = self.objective.step_terms(scorer, flat, prepared, self.world)
        stored = [item.acted for item in flat if not item.rehearsal]
        for name, found in self.objective.diagnostics(stored, terms).items():
            values.setdefault(name, []).extend(found)
        packing = self.job.config.packing
        passes = [
            (group, sequence, 1.0)
            for group in mine
            for sequence in scorer.sequences([i.example for i in group], packing=packing)
        ]
        if not passes and self.world > 1:
            # DDP needs every process in the step's reduction: this one adds zero gradients.
            group = groups[0]
            sequence = scorer.sequences([i.example for i in group], packing=packing)[0]
            passes = [(group, sequence, 0.0)]
        step_loss = torch.zeros(1, dtype=torch.float64)
        for index, (group, sequence, weight) in enumerate(passes):
            last = index == len(passes) - 1
            wrapper = scorer.model
            context = wrapper.no_sync() if wrapper is not None and not last else nullcontext()
            with context:
                spans = spans_of(scorer, group, sequence)
                if weight:
                    parts = losses_of(spans, self.objective, self.rehearsal, terms)
                else:
                    parts = [span.log_prob * 0.0 for span in spans]
                loss = torch.stack(parts).sum() / count
                (loss * self.world).backward()
            step_loss += float(loss.detach())
        if self.world > 1:
            dist.all_reduce(step_loss)
        return float(step_loss)


def job_document(job: TrainingJob) -> dict[str, Any]:
    """A job as JSON-ready data (for a worker started by hand under torchrun)."""
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
        "identity": job.identity,
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
        identity=document.get("identity", {}),
    )
