"""Loading Hugging Face checkpoints in a worker (imports torch and transformers).

Any causal LM or image-text-to-text checkpoint directory works; a wrong or missing path raises
``CheckpointError`` naming the path and what is wrong with it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from ..checkpoints import inspect_checkpoint
from ..interfaces import CheckpointError
from ..prompt_formats import plain_chat_text
from .row_attention import use_row_attention

logger = logging.getLogger(__name__)

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
            dtype
        ]
    except KeyError as exc:
        raise CheckpointError(
            f"unknown dtype {dtype!r}: use auto, bfloat16, float16 or float32"
        ) from exc


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    processor: Any | None
    device: torch.device
    is_multimodal: bool


def _has_processor(path: str) -> bool:
    return os.path.exists(os.path.join(path, "processor_config.json")) or os.path.exists(
        os.path.join(path, "preprocessor_config.json")
    )


def load_model(
    path: str,
    *,
    what: str,
    device: str = "auto",
    dtype: str = "auto",
    need_images: bool = False,
    adapter: str | None = None,
) -> LoadedModel:
    """Load a causal or image-text-to-text checkpoint (and optional PEFT adapter) for inference."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
    )
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    info = inspect_checkpoint(path, what)
    if info.is_adapter or info.is_open_clip:
        raise CheckpointError(
            f"{what}: {path} is a {'PEFT adapter' if info.is_adapter else 'open_clip model'}, "
            "not a causal or image-text-to-text checkpoint"
        )
    multimodal = info.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    if need_images and not multimodal:
        raise CheckpointError(
            f"{what}: {path} is a {info.model_type!r} model, which reads no images; a listener "
            "policy needs an image-text-to-text checkpoint (e.g. IDEFICS2)"
        )
    if not multimodal and info.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise CheckpointError(
            f"{what}: {path} holds a {info.model_type!r} model, neither a causal LM nor an "
            "image-text-to-text model"
        )
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    try:
        processor = AutoProcessor.from_pretrained(path) if _has_processor(path) else None
        tokenizer = (
            processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(path)
        )
        loader = AutoModelForImageTextToText if multimodal else AutoModelForCausalLM
        model = loader.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{what}: cannot load {path}: {exc}") from exc
    if need_images and processor is None:
        raise CheckpointError(f"{what}: {path} has no processor (processor_config.json)")
    use_row_attention(model)
    if adapter:
        model = _attach_adapter(model, adapter, what)
    # PreTrainedModel.to is functools.wraps(nn.Module.to), which mypy does not bind as a method.
    model.to(torch_device)  # type: ignore[arg-type]
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("loaded %s from %s on %s (%s)", what, path, torch_device, torch_dtype)
    return LoadedModel(model, tokenizer, processor, torch_device, multimodal)


def _attach_adapter(model, adapter: str, what: str):
    from peft import PeftModel

    info = inspect_checkpoint(adapter, f"{what} adapter")
    if not info.is_adapter:
        raise CheckpointError(f"{what}: {adapter} has no adapter_config.json: not a PEFT adapter")
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{what}: adapter {adapter} does not fit the model: {exc}") from exc


def chat_text(tokenizer, processor, messages: list[dict]) -> str:
    """The prompt string for ``messages`` with the generation prompt, via the checkpoint's chat
    template; a checkpoint without one gets the IDEFICS2 layout (``Role: text`` lines)."""
    for owner in (processor, tokenizer):
        if owner is not None and getattr(owner, "chat_template", None):
            return _rendered(owner, messages)
    return plain_chat_text(messages)


def _rendered(owner: Any, messages: list[dict]) -> str:
    """``owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``.

    That call spends most of its time copying and normalising the conversation (three
    milliseconds for a 10-turn listener prompt, more than a served turn's forward passes on a
    small model); our messages are plain dicts already, so the compiled template is rendered
    directly with the variables the call passes. The first prompt of each owner is rendered
    both ways: if they differ (a template or transformers release that needs more), the owner
    keeps the full call."""
    direct = getattr(owner, "_respect_direct_chat", None)
    if direct is False:
        return _applied(owner, messages)
    template = owner.chat_template
    if not isinstance(template, str):
        owner._respect_direct_chat = False
        return _applied(owner, messages)
    from transformers.utils.chat_template_utils import _compile_jinja_template

    special = getattr(owner, "tokenizer", owner).special_tokens_map
    text = _compile_jinja_template(template).render(
        messages=messages, tools=None, documents=None, add_generation_prompt=True, **special
    )
    if direct is None:
        applied = _applied(owner, messages)
        owner._respect_direct_chat = text == applied
        if not owner._respect_direct_chat:
            logger.info("chat template of %s: rendered through apply_chat_template", owner)
            return applied
    return text


def _applied(owner: Any, messages: list[dict]) -> str:
    return owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def stop_token_ids(tokenizer) -> list[int]:
    """Tokens that end an answer: EOS and, where the vocabulary has it, ``<end_of_utterance>``."""
    ids = []
    for token in ("<end_of_utterance>",):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))


def continuation_ids(tokenizer, prompt: str, continuation: str) -> list[int]:
    """Token ids that ``continuation`` adds after ``prompt`` (tokenised together, so merges
    across the boundary are those the model sees)."""
    base = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    full = tokenizer(prompt + continuation, add_special_tokens=True)["input_ids"]
    if full[: len(base)] != base:
        raise CheckpointError(
            f"the tokenizer merges {continuation!r} into the end of the prompt; cannot score it"
        )
    return full[len(base) :]
