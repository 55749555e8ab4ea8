"""Pieces of constrained sampling shared by the policy backends: the action trie, per-game
seeded generators, and the peft arguments that pick each row's adapter on a shared base."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

BASE_ROW = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class TrieNode:
    children: dict[int, TrieNode] = field(default_factory=dict)
    action: str | None = None  # set on the node reached after the stop token
    longest: int = 0  # on the root: the most tokens an answer takes, stop included


def _action_of(node: TrieNode) -> str:
    """The action a walk of the trie spells (sampling stops only at a node after the stop)."""
    if node.action is None:
        raise RuntimeError("the walk of the action trie stopped inside an action")
    return node.action


def _generator(seed: str) -> torch.Generator:
    """A generator seeded by a game's turn seed: the same draws alone or in any batch."""
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    return generator


def adapter_kwargs(model: Any, adapters: Sequence[str] | None) -> dict[str, Any]:
    """``adapter_names=`` for a forward pass of a multi-adapter peft model (one name per row);
    nothing for a plain model, whose rows can only be ``__base__``."""
    if adapters is None:
        return {}
    if hasattr(model, "peft_config"):
        return {"adapter_names": list(adapters)}
    if any(name != BASE_ROW for name in adapters):
        raise ValueError(f"adapters {sorted(set(adapters))} asked of a model without adapters")
    return {}


@contextlib.contextmanager
def adapter_hooks(model: Any, adapter: str | None, rows: int) -> Iterator[None]:
    """Run calls below the peft wrapper (the image encoder) under ``adapter`` for ``rows``
    rows; a no-op without an adapter name or on a plain model."""
    if adapter is None or not hasattr(model, "peft_config"):
        yield
        return
    with model.base_model._enable_peft_forward_hooks(adapter_names=[adapter] * rows):
        yield
