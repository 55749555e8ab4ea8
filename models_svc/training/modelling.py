"""Loading the model a run trains, its optimiser, and data parallelism (worker code: torch).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the trainable model is wrapped in
``DistributedDataParallel``, which reduces gradients in buckets as the backward pass produces
them; the loop's forward passes go through the wrapper (``Scorer.model``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

from ..backends.hf_common import LoadedModel, load_model
from ..backends.hf_policy import HFPolicy
from ..interfaces import CheckpointError
from .config import TrainingConfig
from .examples import Example


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        # NCCL reduces only CUDA tensors; the step loss and KTO's KL sums are CPU tensors.
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def device_of(requested: str) -> str:
    if requested == "auto" and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu" if requested == "auto" else requested


def load_trainable(job, adapter: str) -> LoadedModel:
    """The base model with a trainable LoRA adapter: ``adapter`` if given, else a new one."""
    loaded = load_model(
        job.base,
        what="base policy",
        device=device_of(job.device),
        dtype=job.config.dtype,
        need_images=True,
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


def policies_for(
    loaded: LoadedModel, examples: Sequence[Example], config: TrainingConfig
) -> dict[str, HFPolicy]:
    """One policy per prompt format the examples use, sharing the loaded model."""
    formats = {e.prompt_format for e in examples}
    return {
        name: HFPolicy.from_loaded(
            loaded, "training", "training", temperature=config.temperature, prompt_format=name
        )
        for name in formats
    }


def data_parallel(model: torch.nn.Module, world: int) -> Any:
    """The model wrapped in DistributedDataParallel when training on several processes."""
    if world <= 1:
        return None
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def make_optimizer(model, config: TrainingConfig, total_steps: int):
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
