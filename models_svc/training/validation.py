"""Checkpoint selection: validation exact match under greedy constrained decoding (worker code).

The platform selects checkpoints by the share of validation turns whose greedy action (the most
probable token at each step, restricted to valid actions) is the human's action; the study's
released code sampled instead. ``SELECTION_DECODING`` names this on the run page.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backends.hf_common import LoadedModel
from ..backends.hf_policy import HFPolicy
from .packing import policy_input

SELECTION_DECODING = "greedy decoding constrained to valid actions"


def exact_match(loaded: LoadedModel, job, batch: int = 16) -> float | None:
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


def select(history: Sequence[dict]) -> dict:
    """The best epoch: highest validation exact match, then lowest loss, then the earliest seed
    and epoch; without validation, the last epoch of the first seed."""
    scored = [h for h in history if h.get("exact_match") is not None]
    if not scored:
        last = max((h for h in history if h["seed"] == 0), key=lambda h: h["epoch"])
        return {**last, "rule": "last epoch (no validation turns)"}
    best = max(scored, key=lambda h: (h["exact_match"], -h["loss"], -h["seed"], -h["epoch"]))
    return {**best, "rule": "best validation exact match"}
