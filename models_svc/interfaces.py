"""The model service's small interface: plain data in and out, and the three backend protocols.

Nothing here imports torch, transformers or open_clip; backends that need them live in
``models_svc.backends`` and are imported only by worker code (see ``models_svc.registry``).
Letters always name context images in the **listener's** display order (A, B, C, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from config.errors import ApplicationError

LABEL_POSITIVE = "positive"
LABEL_NEUTRAL = "neutral"
LABEL_NEGATIVE = "negative"
LABEL_UNPARSEABLE = "unparseable"
KIND_LABELS: dict[str, tuple[str, ...]] = {
    "binary": (LABEL_POSITIVE, LABEL_NEGATIVE),
    "ternary": (LABEL_POSITIVE, LABEL_NEUTRAL, LABEL_NEGATIVE),
}


@dataclass(frozen=True)
class PastTurn:
    """An earlier turn as the listener saw it: state before, the utterance, the action taken."""

    selection: tuple[str, ...]
    utterance: str
    action: str


@dataclass(frozen=True)
class PolicyInput:
    """Everything a listener policy may read for one turn (never the targets).

    ``images`` are tangram ids in listener order (image i has letter ``LETTERS[i]``);
    ``image_paths`` the matching files (``None`` where a tangram has no image file);
    ``selection`` the letters selected before this turn; ``seed`` makes sampling repeatable,
    so a redelivered task picks the same action.
    """

    images: tuple[str, ...]
    selection: tuple[str, ...]
    utterance: str
    history: tuple[PastTurn, ...] = ()
    image_paths: tuple[str | None, ...] = ()
    seed: str = ""


@dataclass(frozen=True)
class PolicyDecision:
    """A policy's answer: a canonical action string, the probability with which it was sampled
    under the policy's own sampling distribution (``None`` when that is not defined), why
    the action is what it is when the policy did not act normally, and the prompt format the
    action was produced under (empty for policies that read no prompt). ``temperature`` and
    ``constrained`` are the decoding setting the probability was sampled under, where the policy
    can state it (``hf:`` policies; None otherwise): training recomputes p_t with them."""

    action: str
    probability: float | None
    reason: str = ""
    prompt_format: str = ""
    temperature: float | None = None
    constrained: bool | None = None


@dataclass(frozen=True)
class FeedbackContext:
    """The decoder's window ⟨â_{t−1}, u_t, â_t, u_{t+1}⟩; ``previous_action`` is None on turn 0."""

    utterance: str
    action: str
    follow_up: str
    previous_action: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    """A decoder's label (one of the kind's labels or ``unparseable``) with its confidence."""

    label: str
    score: float | None
    raw_output: str = ""
    extra: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class ListenerPolicy(Protocol):
    name: str

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        """One decision per input, in order."""
        ...


@runtime_checkable
class ScoringPolicy(ListenerPolicy, Protocol):
    """A policy that also gives the probability of any valid action (``hf:`` policies)."""

    version: str

    def score(self, item: PolicyInput, action: str) -> float:
        """The probability of ``action`` for ``item`` under the policy's sampling."""
        ...


@runtime_checkable
class FeedbackDecoder(Protocol):
    name: str
    version: str

    def decode(self, contexts: Sequence[FeedbackContext], kind: str) -> list[FeedbackResult]:
        """One result per context, in order; ``kind`` is ``binary`` or ``ternary``."""
        ...


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str
    version: str

    def embed(self, image_paths: Sequence[str]) -> list[list[float]]:
        """One L2-normalised embedding per image file, in order."""
        ...


class CheckpointError(ApplicationError, RuntimeError):
    """A checkpoint path is missing, unreadable or not the kind of model the backend needs."""
