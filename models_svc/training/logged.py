"""What a model turn logged when its action was sampled, and the one check that a training set
can use it (pure: no ORM, no torch).

RL's importance weight and KTO's log-ratio compare the policy being trained with p_t, the
probability with which the deployed policy sampled the action. That comparison is exact only
when the trainer recomputes the probability under the same decoding setting: the same prompt
format, the same temperature, and sampling constrained to valid actions (the only kind the
trainer reproduces). Every model turn records that setting with its p_t (``Turn.sampling_*``),
manifests copy it, and ``logged_problem`` refuses a training set whose p_t cannot be
reproduced, naming the turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoggedTurn:
    """One example as the requirement check reads it; ``name`` is how a refusal names it."""

    name: str
    label: str
    probability: float | None
    temperature: float | None = None
    constrained: bool | None = None


def _names(turns: Sequence[LoggedTurn], limit: int = 8) -> str:
    shown = ", ".join(t.name for t in turns[:limit])
    return shown + (", …" if len(turns) > limit else "")


def logged_problem(turns: Sequence[LoggedTurn], objective: str, needs: Sequence[str]) -> str | None:
    """Why the objective cannot use these turns' p_t, naming the turns; None when it can.

    Refused: a turn whose label needs p_t (``needs``) without one; a p_t sampled without the
    valid-action constraint; a set in which some such turns record their sampling temperature
    and others do not (the trainer would have to guess). Turns that all record none are scored at
    the training config's temperature (data logged before the setting was recorded).
    """
    used = [t for t in turns if t.label in needs]
    missing = [t for t in used if t.probability is None]
    if missing:
        return (
            f"{objective.upper()} needs the logged action probability p_t, which "
            f"{len(missing)} turn(s) lack ({_names(missing)}): train with --objective fft, or "
            "compute p_t for them first (score_turns)"
        )
    unconstrained = [t for t in used if t.constrained is False]
    if unconstrained:
        return (
            f"the p_t of {len(unconstrained)} turn(s) was sampled without the valid-action "
            f"constraint ({_names(unconstrained)}), which {objective.upper()} training cannot "
            "reproduce: recompute their p_t with score_turns, or train with --objective fft"
        )
    unknown = [t for t in used if t.temperature is None]
    if unknown and len(unknown) < len(used):
        return (
            f"the training set mixes p_t logged at a recorded sampling temperature with "
            f"{len(unknown)} turn(s) that record none ({_names(unknown)}): the temperature "
            "their p_t was sampled at cannot be reproduced; recompute their p_t with score_turns"
        )
    return None


def sampling_temperature(recorded: float | None, configured: float) -> float:
    """The temperature a p_t-dependent term is computed at: the recorded one, else the
    training config's (only for sets that record none, see ``logged_problem``)."""
    return configured if recorded is None else recorded
