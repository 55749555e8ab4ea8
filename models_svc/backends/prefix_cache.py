"""The keys and values of each game's last prompt, kept so its next turn computes only what is new.

A listener prompt grows by one exchange per turn: turn t's prompt is turn t−1's, then the answer,
the new selection and the new utterance. The image tokens (64 per image on IDEFICS2, 10 images)
and the whole history sit in front, so without this cache every turn runs the prefill over the
full prompt again; with it a turn runs the forward pass over its new tokens only (a few dozen),
attending to the stored keys and values of the rest.

An entry is keyed by what the stored values depend on besides the tokens: the adapter of the row
(peft names are derived from the adapter's files) and the image files with their modification
times (the image features enter at the image tokens). A lookup finds the longest common prefix
of the stored tokens and the new prompt's, keeps at least one new token to run (its logits start
the answer), and refuses when an image token would fall in the new part (the features of the
prefix path are not computed then). Entries hold tensors on the model's device; least-recently-
used ones are dropped beyond ``budget`` bytes. The cache belongs to one served policy on one base
whose weights never change (a model being trained never uses it).

``continuation`` lays several rows with stored prefixes of different lengths out as one batch:
row i is ``[padding][its prefix][padding][its new tokens]``, the prefix part given as a cache and
masked where padded, so each row's positions and the keys it attends to are exactly those it
would have alone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

KeyValues = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (heads, tokens, head_dim) twice


@dataclass(frozen=True)
class Prefix:
    """Tokens of a stored prompt and their keys and values at every layer."""

    ids: torch.Tensor  # (tokens,) int64, on the CPU
    layers: KeyValues

    @property
    def size(self) -> int:
        return sum(k.numel() * k.element_size() * 2 for k, _ in self.layers)


@dataclass(frozen=True)
class Hit:
    """A usable stored prefix: its first ``length`` tokens are the new prompt's."""

    prefix: Prefix
    length: int


class PrefixCache:
    """Stored prompts by key, least recently used dropped beyond ``budget`` bytes."""

    def __init__(self, budget: int, image_token_id: int | None) -> None:
        self.budget = budget
        self.image_token_id = image_token_id
        self._entries: OrderedDict[Hashable, Prefix] = OrderedDict()
        self._bytes = 0
        self.reused_tokens = 0  # for benchmarks: prompt tokens not run again
        self.computed_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def lookup(self, key: Hashable, ids: torch.Tensor) -> Hit | None:
        """The stored prefix of ``key`` that starts ``ids``, if it leaves only text to run."""
        prefix = self._entries.get(key)
        if prefix is None:
            return None
        self._entries.move_to_end(key)
        limit = min(len(prefix.ids), len(ids) - 1)
        differ = (prefix.ids[:limit] != ids[:limit]).nonzero()
        length = int(differ[0]) if len(differ) else limit
        if length == 0:
            return None
        if self.image_token_id is not None and bool((ids[length:] == self.image_token_id).any()):
            return None
        return Hit(prefix, length)

    def store(self, key: Hashable, prefix: Prefix) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        if prefix.size > self.budget:
            return
        self._entries[key] = prefix
        self._bytes += prefix.size
        while self._bytes > self.budget:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.size

    def count(self, reused: int, computed: int) -> None:
        self.reused_tokens += reused
        self.computed_tokens += computed


def row_prefix(ids: torch.Tensor, cache, row: int, mask: torch.Tensor) -> Prefix:
    """Row ``row`` of a batch's cache after its prefill, ``mask`` left padded (as ``compact``
    leaves it): the row's last ``mask[row].sum()`` positions, copied out."""
    tokens = int(mask[row].sum())
    layers = [
        (layer.keys[row, :, -tokens:].clone(), layer.values[row, :, -tokens:].clone())
        for layer in cache.layers
    ]
    return Prefix(ids.cpu(), layers)


def continuation(
    hits: Sequence[Hit], suffixes: Sequence[torch.Tensor], pad_id: int, config, device
) -> dict:
    """Model inputs for rows that resume stored prefixes: ``input_ids`` (the new tokens, left
    padded), ``attention_mask`` over prefix and new tokens, ``position_ids`` of the new tokens
    and the prefixes as ``past_key_values``."""
    from transformers import DynamicCache

    rows = len(hits)
    longest_prefix = max(hit.length for hit in hits)
    longest_suffix = max(len(suffix) for suffix in suffixes)
    input_ids = torch.full((rows, longest_suffix), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, longest_prefix + longest_suffix), dtype=torch.long)
    for row, (hit, suffix) in enumerate(zip(hits, suffixes, strict=True)):
        input_ids[row, longest_suffix - len(suffix) :] = suffix
        mask[row, longest_prefix - hit.length : longest_prefix] = 1
        mask[row, longest_prefix + longest_suffix - len(suffix) :] = 1
    pairs = []
    for layer, (first_keys, _) in enumerate(hits[0].prefix.layers):
        heads, _, width = first_keys.shape
        shape = (rows, heads, longest_prefix, width)
        keys = first_keys.new_zeros(shape)
        values = first_keys.new_zeros(shape)
        for row, hit in enumerate(hits):
            stored_keys, stored_values = hit.prefix.layers[layer]
            keys[row, :, longest_prefix - hit.length :] = stored_keys[:, : hit.length]
            values[row, :, longest_prefix - hit.length :] = stored_values[:, : hit.length]
        pairs.append((keys, values))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, longest_prefix:]
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": positions.to(device),
        "past_key_values": DynamicCache(ddp_cache_data=pairs, config=config),
    }


def compact(mask: torch.Tensor, cache) -> torch.Tensor:
    """Move each row's keys and values to the end of ``cache`` (in place), its padding first,
    and return the mask that goes with them: after a ``continuation`` pass, whose rows have
    padding between prefix and new tokens, the decoding steps then attend over contiguous keys
    (the same keys in the same order, without a gather per step)."""
    if bool((mask[:, 1:] >= mask[:, :-1]).all()):
        return mask  # already left padded
    order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
    for layer in cache.layers:
        index = order[:, None, :, None].expand_as(layer.keys)
        layer.keys = layer.keys.gather(2, index)
        layer.values = layer.values.gather(2, index)
    return mask.gather(1, order)
