"""One copy of each base model per worker, LoRA adapters attached to it by name.

The cache holds base models by canonical key (``models_svc.model_keys``: real path and a stamp
of the weight files, so differently written paths load once) and attaches each adapter to its
base with peft's multi-adapter API (``PeftModel.load_adapter(path, adapter_name=...)``): round
ρ+1's systems and CONTROL share one base in memory, each forward pass naming the adapter of
each row (``mixed_lora.row_adapters``; ``__base__`` is the base alone).

A memory budget (``MODELS_SVC['MEMORY_BUDGET']``, bytes of parameters; 0 = no limit) is
enforced after each load: least-recently-used adapters and bases are dropped until what the
cache holds fits, never those the current request needs. The budget is checked after a load,
so the peak is what the cache held plus the newcomer. Everything here runs under one lock:
loading, evicting and the forward passes of every base (one GPU runs one at a time anyway).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..checkpoints import inspect_checkpoint
from ..interfaces import CheckpointError
from ..model_keys import ModelKey, model_key
from .hf_common import LoadedModel, load_model

logger = logging.getLogger(__name__)


@dataclass
class BaseEntry:
    """A base model in memory and the adapters attached to it (by key, their peft names)."""

    key: ModelKey
    loaded: LoadedModel
    size: int
    adapters: dict[ModelKey, str] = field(default_factory=dict)
    adapter_sizes: dict[ModelKey, int] = field(default_factory=dict)
    policies: dict[Any, Any] = field(default_factory=dict)  # per prompt format, built lazily

    @property
    def is_peft(self) -> bool:
        return hasattr(self.loaded.model, "peft_config")


def adapter_name(key: ModelKey) -> str:
    """A peft adapter name for ``key`` (letters, digits and ``_`` only, stable per key)."""
    return "a_" + hashlib.sha256(str(key).encode()).hexdigest()[:12]


def parameter_bytes(parameters: Iterable[Any]) -> int:
    return sum(p.numel() * p.element_size() for p in parameters)


class ModelCache:
    """Bases and adapters of one worker process, least recently used first."""

    def __init__(self, *, budget: int = 0, device: str = "auto", dtype: str = "auto") -> None:
        self.budget = budget
        self.device = device
        self.dtype = dtype
        self.lock = threading.RLock()
        self.bases: dict[ModelKey, BaseEntry] = {}
        self._recent: OrderedDict[tuple[ModelKey, ModelKey | None], None] = OrderedDict()
        self.loads = {"bases": 0, "adapters": 0}

    # -- lookups, loading on demand ----------------------------------------------------------------

    def base(self, path: str, *, what: str = "listener policy", keep: Iterable = ()) -> BaseEntry:
        """The base model at ``path``, loaded once per canonical key."""
        with self.lock:
            key = model_key(path, what)
            entry = self.bases.get(key)
            if entry is None:
                loaded = load_model(
                    key.path, what=what, device=self.device, dtype=self.dtype, need_images=True
                )
                size = parameter_bytes(loaded.model.parameters())
                entry = self.bases[key] = BaseEntry(key, loaded, size)
                self.loads["bases"] += 1
                self._touch(key, None)
                self._evict(keep={(key, None), *keep})
                self._log_holdings(f"loaded base {key.path}")
            self._touch(key, None)
            return entry

    def adapter(self, entry: BaseEntry, path: str, *, keep: Iterable = ()) -> str:
        """The peft name of the adapter at ``path`` on ``entry``, attached once per key."""
        with self.lock:
            key = model_key(path, "listener policy adapter")
            name = entry.adapters.get(key)
            if name is None:
                name = self._attach(entry, key)
                self._touch(entry.key, key)
                self._touch(entry.key, None)
                self._evict(keep={(entry.key, key), (entry.key, None), *keep})
                self._log_holdings(f"attached adapter {key.path}")
            self._touch(entry.key, key)
            self._touch(entry.key, None)
            return name

    def _attach(self, entry: BaseEntry, key: ModelKey) -> str:
        from peft import PeftModel

        info = inspect_checkpoint(key.path, "listener policy adapter")
        if not info.is_adapter:
            raise CheckpointError(
                f"listener policy: {key.path} has no adapter_config.json: not a PEFT adapter"
            )
        name = adapter_name(key)
        model = entry.loaded.model
        try:
            if entry.is_peft:
                model.load_adapter(key.path, adapter_name=name)
            else:
                model = PeftModel.from_pretrained(model, key.path, adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"listener policy: adapter {key.path} does not fit the model: {exc}"
            ) from exc
        model.to(entry.loaded.device)
        model.eval()
        entry.loaded.model = model
        entry.adapters[key] = name
        entry.adapter_sizes[key] = parameter_bytes(
            p for n, p in model.named_parameters() if f".{name}." in n
        )
        self.loads["adapters"] += 1
        return name

    # -- least recently used -----------------------------------------------------------------------

    def _touch(self, base: ModelKey, adapter: ModelKey | None) -> None:
        self._recent[(base, adapter)] = None
        self._recent.move_to_end((base, adapter))

    def held_bytes(self) -> int:
        with self.lock:
            return sum(e.size + sum(e.adapter_sizes.values()) for e in self.bases.values())

    def _evict(self, keep: set) -> None:
        if self.budget <= 0:
            return
        for base, adapter in list(self._recent):
            if self.held_bytes() <= self.budget:
                return
            if (base, adapter) not in self._recent:  # went with its base
                continue
            if (base, adapter) in keep or (adapter is None and any(k[0] == base for k in keep)):
                continue
            self._drop(base, adapter)

    def _drop(self, base: ModelKey, adapter: ModelKey | None) -> None:
        entry = self.bases[base]
        if adapter is None:
            for key in list(entry.adapters):
                self._recent.pop((base, key), None)
            del self.bases[base]
            self._recent.pop((base, None), None)
            logger.info("evicted base %s", base.path)
            return
        name = entry.adapters.pop(adapter)
        entry.adapter_sizes.pop(adapter)
        self._recent.pop((base, adapter), None)
        if entry.adapters:
            entry.loaded.model.delete_adapter(name)
        else:  # the last adapter: back to the plain base model
            entry.loaded.model = entry.loaded.model.unload()
        logger.info("evicted adapter %s from %s", adapter.path, base.path)

    # -- what the worker holds ---------------------------------------------------------------------

    def holdings(self) -> list[str]:
        """One line per base and adapter held, most recently used last."""
        with self.lock:
            lines = []
            for base, adapter in self._recent:
                entry = self.bases[base]
                if adapter is None:
                    lines.append(f"base {base.path} ({entry.size / 2**20:.1f} MiB)")
                else:
                    size = entry.adapter_sizes[adapter]
                    lines.append(f"adapter {adapter.path} on {base.path} ({size / 2**20:.1f} MiB)")
            return lines

    def _log_holdings(self, event: str) -> None:
        logger.info(
            "model cache: %s; holds %.1f MiB of %s: %s",
            event,
            self.held_bytes() / 2**20,
            f"{self.budget / 2**20:.1f} MiB" if self.budget else "no budget",
            "; ".join(self.holdings()),
        )


class BaseRows:
    """A shared base model seen as a plain one (for the feedback decoder): every call names
    ``__base__`` for each row, so the adapters attached for policies stay off, and holds the
    cache's lock, so no adapter is attached or dropped during the pass."""

    def __init__(self, entry: BaseEntry, lock: threading.RLock) -> None:
        self.entry = entry
        self.lock = lock

    def _rows(self, model: Any, kwargs: dict) -> dict:
        from .sampling import BASE_ROW, adapter_kwargs

        return adapter_kwargs(model, [BASE_ROW] * kwargs["input_ids"].shape[0])

    def __call__(self, **kwargs: Any) -> Any:
        with self.lock:
            model = self.entry.loaded.model
            return model(**kwargs, **self._rows(model, kwargs))

    def generate(self, **kwargs: Any) -> Any:
        with self.lock:
            model = self.entry.loaded.model
            return model.generate(**kwargs, **self._rows(model, kwargs))
