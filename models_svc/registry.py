"""Backends by spec string, built once per worker process.

Specs (``System.policy_checkpoint``, ``System.decoder``, ``settings.MODELS_SVC``):

- policies: ``random``, ``random:toggle``, ``clip:PATH``, ``hf:PATH`` or ``hf:PATH+lora:PATH``;
- decoders: ``lexicon``, ``hf:PATH``;
- embedders: ``clip:PATH`` (a Hugging Face CLIP directory, or an open_clip directory holding
  ``open_clip_config.json`` and its weights).

Only ``random*`` and ``lexicon`` are importable without the ``ml`` extra; the others import
their backend module (and with it torch) when first asked for, inside the worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .interfaces import CheckpointError, FeedbackDecoder, ImageEmbedder, ListenerPolicy
from .prompt_formats import get_format

_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()
_server: Any = None
_turns_at_once: int | None = None  # set by a Celery worker from its pool (set_turns_at_once)


@dataclass(frozen=True)
class Spec:
    """A parsed spec: backend name, main path, optional LoRA adapter path."""

    backend: str
    path: str = ""
    adapter: str = ""

    def __str__(self) -> str:
        text = self.backend + (f":{self.path}" if self.path else "")
        return text + (f"+lora:{self.adapter}" if self.adapter else "")


POLICY_BACKENDS = ("random", "random:toggle", "clip", "hf")
DECODER_BACKENDS = ("lexicon", "hf")
EMBEDDER_BACKENDS = ("clip",)


def parse_spec(text: str, kind: str) -> Spec:
    """Parse a spec string of ``kind`` (policy, decoder, embedder); raises CheckpointError."""
    text = text.strip()
    allowed = {
        "policy": POLICY_BACKENDS,
        "decoder": DECODER_BACKENDS,
        "embedder": EMBEDDER_BACKENDS,
    }[kind]
    if text in allowed and text not in ("clip", "hf"):
        return Spec(text)
    backend, sep, rest = text.partition(":")
    if not sep or backend not in allowed or backend not in ("clip", "hf") or not rest:
        raise CheckpointError(
            f"{kind} spec {text!r} is not one of: "
            + ", ".join(b if b not in ("clip", "hf") else f"{b}:PATH" for b in allowed)
            + (" (hf:PATH may add +lora:PATH)" if kind == "policy" else "")
        )
    path, plus, adapter = rest.partition("+lora:")
    if plus and kind != "policy":
        raise CheckpointError(f"{kind} spec {text!r}: LoRA adapters apply to policies only")
    if plus and backend != "hf":
        raise CheckpointError(f"{kind} spec {text!r}: LoRA adapters need an hf: checkpoint")
    if plus and not adapter:
        raise CheckpointError(f"{kind} spec {text!r}: '+lora:' names no path")
    return Spec(backend, path, adapter)


def default_spec(kind: str) -> str:
    return str(settings.MODELS_SVC.get(kind.upper(), "") or "")


def _cached(kind: str, spec: Spec, build) -> Any:
    key = (kind, str(spec))
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def model_options() -> dict[str, Any]:
    """Backend options from ``settings.MODELS_SVC``: DEVICE (auto, cpu, cuda, cuda:1), DTYPE
    (auto, bfloat16, float16, float32), BATCH_SIZE (decoder), TEMPERATURE (policies),
    POLICY_MAX_BATCH (requests served together), POLICY_BATCH_WAIT_MS (how long the first
    request of a batch waits for others), MEMORY_BUDGET (bytes of model parameters a worker
    keeps; 0 = no limit), PREFIX_CACHE_BYTES (keys and values of games' last prompts a
    worker keeps so the next turn runs only its new tokens; 0 = off), DECODER_MODE (score or
    generate)."""
    options = settings.MODELS_SVC
    return {
        "device": options.get("DEVICE", "auto"),
        "dtype": options.get("DTYPE", "auto"),
        "batch_size": int(options.get("BATCH_SIZE", 32)),
        "temperature": float(options.get("TEMPERATURE", 1.0)),
        "policy_max_batch": int(options.get("POLICY_MAX_BATCH", 32)),
        "policy_batch_wait_ms": float(options.get("POLICY_BATCH_WAIT_MS", 5)),
        "memory_budget": int(options.get("MEMORY_BUDGET", 0)),
        "prefix_cache_bytes": int(options.get("PREFIX_CACHE_BYTES", 0)),
        "decoder_mode": options.get("DECODER_MODE", "score"),
    }


def get_policy(text: str | None = None, *, prompt_format: str = "") -> ListenerPolicy:
    """The policy of ``text`` prompting in ``prompt_format`` (the default format if empty;
    only ``hf:`` policies read a prompt)."""
    spec = parse_spec(text or default_spec("policy") or "random", "policy")
    format_name = get_format(prompt_format).name

    def build() -> ListenerPolicy:
        if spec.backend == "random":
            from .baselines import RandomPolicy

            return RandomPolicy()
        if spec.backend == "random:toggle":
            from .baselines import RandomTogglePolicy

            return RandomTogglePolicy()
        if spec.backend == "clip":
            from .backends.clip import ClipListener, load_clip

            return ClipListener(
                load_clip(spec.path, **_device_options()),
                temperature=model_options()["temperature"],
            )
        raise AssertionError("hf: policies are served by the policy server")

    if spec.backend == "hf":
        return policy_server().policy(spec.path, spec.adapter, format_name, str(spec))
    return _cached("policy", spec, build)


def turns_at_once(pool: Any, concurrency: Any) -> int | None:
    """How many listener turns one worker process of Celery pool ``pool`` (its alias or class)
    with ``concurrency`` can ask at once: one per thread in a thread pool, one in a solo worker
    or a prefork child; None (unknown) for other pools."""
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool
    from celery.concurrency.solo import TaskPool as SoloPool
    from celery.concurrency.thread import TaskPool as ThreadPool

    implementation = get_implementation(pool)
    if issubclass(implementation, ThreadPool) and isinstance(concurrency, int):
        return concurrency
    if issubclass(implementation, SoloPool | PreforkPool):
        return 1
    return None


def set_turns_at_once(count: int | None) -> None:
    """Cap the policy server's batches at ``count`` (a Celery worker calls this as it starts,
    from its pool): a batch holding a turn from every thread that can ask is answered at once,
    since no other can arrive within its window."""
    global _turns_at_once
    _turns_at_once = count


def policy_server():
    """This worker's ``PolicyServer``: one copy of each base model, adapters attached by name,
    turns of every adapter of a base batched together (``models_svc.backends.policy_server``)."""
    global _server
    with _lock:
        if _server is None:
            from .backends.policy_server import PolicyServer, ServingOptions

            options = model_options()
            _server = PolicyServer(
                ServingOptions(
                    device=options["device"],
                    dtype=options["dtype"],
                    temperature=options["temperature"],
                    max_batch=min(options["policy_max_batch"], _turns_at_once or 10**9),
                    max_wait=options["policy_batch_wait_ms"] / 1000,
                    budget=options["memory_budget"],
                    prefix_cache_bytes=options["prefix_cache_bytes"],
                )
            )
        return _server


def get_decoder(text: str | None = None) -> FeedbackDecoder:
    spec = parse_spec(text or default_spec("decoder") or "lexicon", "decoder")
    options = model_options()

    def build() -> FeedbackDecoder:
        if spec.backend == "lexicon":
            from .lexicon import LexiconDecoder

            return LexiconDecoder()
        from .backends.hf_decoder import HFDecoder

        return HFDecoder(
            spec.path,
            device=options["device"],
            dtype=options["dtype"],
            batch_size=options["batch_size"],
            mode=options["decoder_mode"],
        )

    if spec.backend == "hf":
        server = policy_server()
        if server.shares_decoder(spec.path):
            return server.decoder(
                spec.path, batch_size=options["batch_size"], mode=options["decoder_mode"]
            )
    return _cached("decoder", spec, build)


def get_embedder(text: str | None = None) -> ImageEmbedder:
    raw = text or default_spec("embedder")
    if not raw:
        raise CheckpointError(
            "no embedder configured: pass clip:PATH or set RESPECT_EMBEDDER "
            "(settings.MODELS_SVC['EMBEDDER'])"
        )
    spec = parse_spec(raw, "embedder")

    def build() -> ImageEmbedder:
        from .backends.clip import ClipEmbedder, load_clip

        return ClipEmbedder(load_clip(spec.path, **_device_options()))

    return _cached("embedder", spec, build)


def _device_options() -> dict[str, str]:
    options = model_options()
    return {"device": options["device"]}


def clear_cache() -> None:
    """Forget every built backend and the policy server (tests; a worker that must reload a
    changed checkpoint or read changed options)."""
    global _server
    with _lock:
        _cache.clear()
        _server = None
