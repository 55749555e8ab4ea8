"""What listens in a system's games, in words, so nobody mistakes a stand-in for a trained model.

The label is read from the system's policy spec (``System.policy_checkpoint``, else the default
policy of ``settings.MODELS_SVC``): see ``models_svc.registry`` for the specs.
"""

from __future__ import annotations

from django.conf import settings

from games.models import System

RANDOM_POLICY = "random policy: clicks at random, not a trained model"
RANDOM_TOGGLE_POLICY = "random toggle policy: clicks at random, not a trained model"


def policy_spec(system: System) -> str:
    """The policy the system's listener runs (its own spec, else the platform's default)."""
    return system.policy_checkpoint or settings.MODELS_SVC.get("POLICY", "") or "random"


def listener_label(system: System) -> str:
    """A short description of the system's listener: human, a random stand-in, or a checkpoint."""
    if system.name == System.HUMAN:
        return "human listeners"
    spec = policy_spec(system)
    if spec == "random":
        return RANDOM_POLICY
    if spec.startswith("random:toggle"):
        return RANDOM_TOGGLE_POLICY
    backend, _, path = spec.partition(":")
    if "+lora:" in path:
        base, _, adapter = path.partition("+lora:")
        return f"{backend} checkpoint {_last_part(base)} with LoRA adapter {_adapter_part(adapter)}"
    return f"{backend} checkpoint {_last_part(path)}" if path else f"{backend} policy"


def is_stand_in(system: System) -> bool:
    """A model listener that is no trained model at all (the demo's random policies)."""
    return system.name != System.HUMAN and policy_spec(system).startswith("random")


def _last_part(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _adapter_part(path: str) -> str:
    """An adapter's folder with its parent (``run-7/adapter``): training runs all name their
    adapter folder ``adapter``, so the parent is what tells them apart."""
    parts = [part for part in path.rstrip("/").split("/") if part]
    return "/".join(parts[-2:]) or path
