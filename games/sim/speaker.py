"""Scripted speakers for simulated studies (pure: no ORM).

A scripted speaker sees what a speaker sees (its targets, and after each turn the listener's
selection) and writes the next utterance from a seeded strategy: how it refers to a target
(``letters``: the target's letter in the listener's order, trivial and for tests; ``names``: a
fixed pseudo-word per tangram shared by the whole simulated population, so a listener has to
bind words to images; ``mixed``: either, per utterance), how it reacts to the listener's last
action (approval, moving on silently, correction, rephrasing, asking to reset, going idle,
typos) and how many targets it asks for per turn. It also knows whether it was satisfied with
the previous turn, the ground truth a feedback decoder is checked against.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from games.actions import LETTERS

REFERENCE_MODES = ("letters", "names", "mixed")
SYLLABLES = (
    "ka", "lo", "mi", "zu", "te", "ra", "po", "vi", "shen", "dor", "bal", "fi", "gu", "nek",
    "sa", "tov", "wu", "yel", "qua", "rim",
)  # fmt: skip
APPROVALS = ("good", "yes", "great", "correct", "nice", "perfect", "ok good")
CORRECTIONS = ("no, not that one", "wrong", "that's not it", "no", "nope, not that")
REPHRASE = ("i said", "no, i meant", "try again:", "not quite, i mean")
RESETS = ("deselect everything", "clear all and start over", "reset, remove everything")
REQUESTS = ("select {}", "click {}", "pick {}", "now {}", "{}", "choose {}")
DESELECTS = ("deselect {}", "remove {}", "unselect {}", "take off {}")


@dataclass(frozen=True)
class Population:
    """A named, versioned set of speaker parameters (probabilities per turn), shared by every
    simulated speaker of a study. ``seed`` fixes the tangram names of the population."""

    name: str = "default"
    version: str = "1"
    refer: str = "letters"
    approve: float = 0.6
    correct: float = 0.7
    rephrase: float = 0.5
    reset: float = 0.1
    idle: float = 0.0
    typo: float = 0.0
    targets_per_turn: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.refer not in REFERENCE_MODES:
            raise ValueError(
                f"refer must be one of {', '.join(REFERENCE_MODES)}, not {self.refer!r}"
            )
        if self.targets_per_turn < 1:
            raise ValueError("targets_per_turn must be at least 1")
        for name in ("approve", "correct", "rephrase", "reset", "idle", "typo"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a probability, not {value!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpeakerView:
    """What the speaker knows before writing turn ``turn_index`` (tangram ids throughout):
    the listener's order (only for letter references), its targets, the current selection and
    the previous turn's newly deselected and selected images."""

    listener_order: tuple[str, ...]
    targets: frozenset[str]
    selection: frozenset[str]
    turn_index: int
    deselected: frozenset[str] = frozenset()
    selected: frozenset[str] = frozenset()
    asked: tuple[str, ...] = ()


@dataclass(frozen=True)
class Utterance:
    """The next utterance (None: the speaker goes idle), what it asks to select and to
    deselect (tangram ids; what a perfect listener would do), and whether the speaker was
    satisfied with the previous turn (None on the first turn)."""

    text: str | None
    asked: tuple[str, ...]
    satisfied: bool | None
    deselect: tuple[str, ...] = ()


def tangram_name(name: str, seed: int) -> str:
    """The population's fixed pseudo-word for a tangram (two or three syllables)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    count = 2 + digest[0] % 2
    return "".join(SYLLABLES[digest[1 + i] % len(SYLLABLES)] for i in range(count))


def was_good(view: SpeakerView) -> bool | None:
    """The previous turn was good: something changed, every newly selected image a target and
    every newly deselected image a non-target."""
    if view.turn_index == 0:
        return None
    if not view.selected and not view.deselected:
        return False
    return view.selected <= view.targets and not (view.deselected & view.targets)


def refer(name: str, view: SpeakerView, population: Population, rng: random.Random) -> str:
    mode = population.refer
    if mode == "mixed":
        mode = rng.choice(("letters", "names"))
    if mode == "letters":
        return LETTERS[view.listener_order.index(name)]
    return "the " + tangram_name(name, population.seed)


def speak(view: SpeakerView, population: Population, rng: random.Random) -> Utterance:
    """The speaker's next move (see the module docstring)."""
    satisfied = was_good(view)
    if rng.random() < population.idle:
        return Utterance(None, (), satisfied)
    wrong = sorted(view.selection - view.targets)
    missing = [name for name in view.listener_order if name in view.targets - view.selection]
    if wrong:
        if len(wrong) > 1 and rng.random() < population.reset:
            everything = tuple(sorted(view.selection))
            return Utterance(_typo(rng.choice(RESETS), population, rng), (), satisfied, everything)
        fix = _join(rng.choice(DESELECTS), [refer(w, view, population, rng) for w in wrong])
        if rng.random() < population.correct:
            fix = f"{rng.choice(CORRECTIONS)}, {fix}"
        return Utterance(_typo(fix, population, rng), (), satisfied, tuple(wrong))
    asked = [name for name in view.asked if name in missing]
    rephrasing = bool(asked) and satisfied is False
    if not asked:
        asked = missing[: population.targets_per_turn]
        rng.shuffle(asked)
    request = _join(rng.choice(REQUESTS), [refer(name, view, population, rng) for name in asked])
    if rephrasing and rng.random() < population.rephrase:
        request = f"{rng.choice(REPHRASE)} {request}"
    elif satisfied and rng.random() < population.approve:
        request = f"{rng.choice(APPROVALS)}. {request}"
    return Utterance(_typo(request, population, rng), tuple(asked), satisfied)


def _join(template: str, references: Sequence[str]) -> str:
    return template.format(" and ".join(references))


def _typo(text: str, population: Population, rng: random.Random) -> str:
    """Swap two neighbouring letters of a word longer than three letters, sometimes."""
    if rng.random() >= population.typo:
        return text
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if len(word) > 3 and word.isalpha()]
    if not long_words:
        return text
    index = rng.choice(long_words)
    word = words[index]
    at = rng.randrange(len(word) - 1)
    words[index] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)
