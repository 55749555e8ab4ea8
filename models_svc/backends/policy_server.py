"""Serving ``hf:BASE[+lora:ADAPTER]`` listener policies from one base copy per worker.

``PolicyServer`` (one per worker process, ``models_svc.registry``) hands out ``ServedPolicy``
views: light objects holding paths and a version, no weights. Their turns go to the micro-
batcher of their base model (``models_svc.batching``), which answers turns of every adapter of
that base, and of the base alone (CONTROL), in one forward pass (``mixed_lora.mixed_rows``). The
weights live in the ``ModelCache``, which attaches adapters to the base by name and evicts
least-recently-used ones under the memory budget; a view whose adapter was evicted has it
attached again on its next turn.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ..checkpoints import fingerprint, inspect_checkpoint
from ..interfaces import PolicyDecision, PolicyInput
from ..model_keys import ModelKey, model_key
from ..prompt_formats import get_format
from .model_cache import BaseEntry, BaseRows, ModelCache
from .sampling import BASE_ROW

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingOptions:
    device: str = "auto"
    dtype: str = "auto"
    temperature: float = 1.0
    max_batch: int = 32
    max_wait: float = 0.005
    budget: int = 0
    prefix_cache_bytes: int = 0


class ServedPolicy:
    """The listener policy of one spec, answered through its base's micro-batcher."""

    def __init__(self, server: PolicyServer, base: str, adapter: str, fmt: str, name: str):
        self.server = server
        self.base_path = base
        self.adapter_path = adapter
        self.prompt_format = fmt
        self.name = name
        paths = [base, adapter] if adapter else [base]
        self.version = f"{fingerprint(*paths)}-{get_format(fmt).tag}"
        self._batcher: Any = None

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        """Queue ``inputs`` on the base's batcher, looked up once per view: the lookup keys
        the base by its files (a realpath and a stat per weight file, under the cache lock),
        too slow for every turn when many games ask within one batch window."""
        if self._batcher is None:
            self._batcher = self.server.batcher(self.base_path, self.prompt_format)
        return self._batcher.submit(inputs, self.adapter_path)

    def score(self, item: PolicyInput, action: str) -> float:
        server = self.server
        return server.score(self.base_path, self.adapter_path, self.prompt_format, item, action)


class PolicyServer:
    """Base models, adapters and micro-batchers of one worker process."""

    def __init__(self, options: ServingOptions) -> None:
        from ..batching import MicroBatcher

        self.options = options
        self.cache = ModelCache(budget=options.budget, device=options.device, dtype=options.dtype)
        self._batchers: dict[tuple[ModelKey, str], MicroBatcher] = {}
        self._views: dict[tuple[ModelKey, ModelKey | None, str], ServedPolicy] = {}
        self._batcher_class = MicroBatcher

    def policy(self, base: str, adapter: str, fmt: str, name: str) -> ServedPolicy:
        """The view of ``hf:base[+lora:adapter]`` in ``fmt``, its weights loaded (a bad path
        raises CheckpointError here)."""
        key = (
            model_key(base, "listener policy"),
            model_key(adapter, "listener policy adapter") if adapter else None,
            fmt,
        )
        with self.cache.lock:
            view = self._views.get(key)
            if view is None:
                entry = self.cache.base(base)
                if adapter:
                    self.cache.adapter(entry, adapter, keep={(entry.key, None)})
                view = self._views[key] = ServedPolicy(self, base, adapter, fmt, name)
            return view

    def batcher(self, base: str, fmt: str):
        key = (model_key(base), fmt)
        with self.cache.lock:
            if key not in self._batchers:
                self._batchers[key] = self._batcher_class(
                    lambda items, routes: self.run_batch(base, fmt, items, routes),
                    name=f"{key[0].path}:{fmt}",
                    max_batch=self.options.max_batch,
                    max_wait=self.options.max_wait,
                )
            return self._batchers[key]

    def _prepare(self, base: str, fmt: str, adapters: Sequence[str]):
        """The shared policy of ``base`` in ``fmt`` and each row's adapter name, every adapter
        attached (none of them evicted to make room for another)."""
        entry = self.cache.base(base)
        wanted = {path: model_key(path) for path in set(adapters) if path}
        keep = {(entry.key, None)} | {(entry.key, key) for key in wanted.values()}
        names = {path: self.cache.adapter(entry, path, keep=keep) for path in wanted}
        rows = [names[path] if path else BASE_ROW for path in adapters]
        return self._shared_policy(entry, fmt), (rows if entry.is_peft else None)

    def run_batch(
        self, base: str, fmt: str, items: list[PolicyInput], routes: list[Hashable]
    ) -> list[PolicyDecision]:
        """One forward pass for turns of any adapters of one base (grouped by adapter when the
        image encoder would run inside the pass: peft mixes rows only over the text rows)."""
        with self.cache.lock:
            policy, rows = self._prepare(base, fmt, [str(route or "") for route in routes])
            if rows is None or len(set(rows)) == 1 or policy._can_cache_images():
                return policy.act(items, adapters=rows)
            decisions: list[Any] = [None] * len(items)
            for name in dict.fromkeys(rows):
                picked = [i for i, row in enumerate(rows) if row == name]
                answers = policy.act([items[i] for i in picked], adapters=[name] * len(picked))
                for index, answer in zip(picked, answers, strict=True):
                    decisions[index] = answer
            return decisions

    def score(self, base: str, adapter: str, fmt: str, item: PolicyInput, action: str) -> float:
        with self.cache.lock:
            policy, rows = self._prepare(base, fmt, [adapter])
            return policy.score(item, action, adapter=rows[0] if rows else None)

    def shares_decoder(self, path: str) -> bool:
        """Whether a feedback decoder on ``path`` runs on the shared base (an image-text-to-
        text checkpoint, which policies may name too); a text-only one loads on its own."""
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        )

        info = inspect_checkpoint(path, "feedback decoder")
        return not info.is_adapter and info.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    def decoder(self, path: str, *, batch_size: int, mode: str):
        """The feedback decoder on the shared copy of ``path`` (adapters off)."""
        from .hf_decoder import HFDecoder

        with self.cache.lock:
            entry = self.cache.base(path, what="feedback decoder")
            key = ("decoder", batch_size, mode)
            if key not in entry.policies:
                loaded = dataclasses.replace(entry.loaded, model=BaseRows(entry, self.cache.lock))
                entry.policies[key] = HFDecoder.from_loaded(
                    loaded, f"hf:{path}", fingerprint(path), batch_size=batch_size, mode=mode
                )
            return entry.policies[key]

    def _shared_policy(self, entry: BaseEntry, fmt: str):
        from .hf_policy import HFPolicy

        if fmt not in entry.policies:
            policy = HFPolicy.from_loaded(
                entry.loaded,
                f"hf:{entry.key.path}",
                entry.key.stamp,
                temperature=self.options.temperature,
                prompt_format=fmt,
                shared=entry,
            )
            if self.options.prefix_cache_bytes > 0:
                from .prefix_cache import PrefixCache

                image_token = getattr(policy._base_model().config, "image_token_id", None)
                policy.prefix_cache = PrefixCache(self.options.prefix_cache_bytes, image_token)
            entry.policies[fmt] = policy
        return entry.policies[fmt]
