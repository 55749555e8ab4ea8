"""Training examples and the rules that pick them (pure: no ORM, no torch).

One example per listener turn, rendered later by the prompt function that produced its action
(``prompt_format``). A turn of a model system is an example only if its utterance u_t and its
action â_t are non-empty and a non-empty follow-up u_{t+1} exists, and the system's decoder
labelled it; every other turn is counted under the first rule it breaks (``EXCLUSION_REASONS``).

Seed turns (D₀) and validation turns are "good" human–human turns: every newly selected image a
target and every newly deselected image a non-target. D₀ adds synthetic deselection turns at one
per twelve real ones (``synthetic_deselections``).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from games.actions import LETTERS, Action, format_action, parse_action

from ..interfaces import PastTurn

EXCLUSION_REASONS = (
    "empty_utterance",
    "empty_action",
    "no_follow_up",
    "no_label",
    "unparseable_label",
)
SEED_EXCLUSION_REASONS = ("empty_utterance", "empty_action", "not_good")

UNDO_UTTERANCES = (
    "wrong, undo what you selected",
    "no, not that one, deselect it",
    "that is wrong, undo it",
    "not that, remove it",
)
CLEAR_UTTERANCES = (
    "clear everything",
    "deselect everything",
    "start over, deselect all",
    "remove all of them",
)
SYNTHETIC_RATIO = 12


@dataclass(frozen=True)
class TurnRecord:
    """One stored turn as the example rules read it; letters in the listener's order."""

    turn_id: int
    index: int
    utterance: str
    selection: tuple[str, ...]
    action: str
    probability: float | None = None
    prompt_format: str = ""
    temperature: float | None = None
    constrained: bool | None = None


@dataclass(frozen=True)
class GameRecord:
    """An ended game: its listener order (tangram ids), target letters and turns in order."""

    game_id: int
    images: tuple[str, ...]
    targets: frozenset[str]
    turns: tuple[TurnRecord, ...]
    prompt_format: str = ""


@dataclass(frozen=True)
class Example:
    """One turn to train on: what the policy saw, the action it took and the decoded label.

    ``group`` names the examples that share one packed sequence (a game's turns; a synthetic
    turn is a group of its own); ``key`` identifies the example in a manifest.
    """

    key: str
    group: str
    images: tuple[str, ...]
    history: tuple[PastTurn, ...]
    selection: tuple[str, ...]
    utterance: str
    action: str
    label: str = "positive"
    probability: float | None = None
    prompt_format: str = ""
    turn_id: int | None = None
    # The decoding setting p_t was sampled under (``logged.py``); None where not recorded.
    temperature: float | None = None
    constrained: bool | None = None


@dataclass
class Selection:
    """Examples picked by a rule, and how many turns each exclusion rule removed."""

    examples: list[Example] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    def exclude(self, reason: str) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + 1

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for example in self.examples:
            counts[example.label] = counts.get(example.label, 0) + 1
        return dict(sorted(counts.items()))


def past_turns(turns: Sequence[TurnRecord]) -> tuple[PastTurn, ...]:
    """Turns as the history of a later prompt (state before, utterance, action)."""
    return tuple(PastTurn(t.selection, t.utterance, t.action) for t in turns)


def _example(game: GameRecord, position: int, label: str) -> Example:
    turn = game.turns[position]
    history = past_turns(game.turns[:position])
    return Example(
        key=f"turn:{turn.turn_id}",
        group=f"game:{game.game_id}",
        images=game.images,
        history=history,
        selection=turn.selection,
        utterance=turn.utterance,
        action=turn.action,
        label=label,
        probability=turn.probability,
        prompt_format=turn.prompt_format or game.prompt_format,
        turn_id=turn.turn_id,
        temperature=turn.temperature,
        constrained=turn.constrained,
    )


def interaction_examples(games: Sequence[GameRecord], labels: dict[int, str]) -> Selection:
    """Examples of model-system games with their decoded labels (``labels`` by turn id)."""
    selection = Selection()
    for game in games:
        for position, turn in enumerate(game.turns):
            follow = game.turns[position + 1] if position + 1 < len(game.turns) else None
            label = labels.get(turn.turn_id)
            if not turn.utterance.strip():
                selection.exclude("empty_utterance")
            elif not turn.action:
                selection.exclude("empty_action")
            elif follow is None or not follow.utterance.strip():
                selection.exclude("no_follow_up")
            elif label is None:
                selection.exclude("no_label")
            elif label == "unparseable":
                selection.exclude("unparseable_label")
            else:
                selection.examples.append(_example(game, position, label))
    return selection


def is_good_turn(turn: TurnRecord, targets: frozenset[str], size: int) -> bool:
    """Every newly selected image a target and every newly deselected image a non-target."""
    action = parse_action(turn.action, size)
    return (action.select <= targets) and not (action.deselect & targets)


def good_turn_examples(games: Sequence[GameRecord]) -> Selection:
    """The good turns of human–human games (seed set D₀, validation set), labelled positive."""
    selection = Selection()
    for game in games:
        for position, turn in enumerate(game.turns):
            if not turn.utterance.strip():
                selection.exclude("empty_utterance")
            elif not turn.action:
                selection.exclude("empty_action")
            elif not is_good_turn(turn, game.targets, len(game.images)):
                selection.exclude("not_good")
            else:
                selection.examples.append(_example(game, position, "positive"))
    return selection


def selection_after(turn: TurnRecord, size: int) -> tuple[str, ...]:
    action = parse_action(turn.action, size)
    return tuple(sorted((set(turn.selection) - action.deselect) | action.select))


def synthetic_deselections(games: Sequence[GameRecord], real: int, seed: str) -> list[Example]:
    """``round(real / 12)`` synthetic deselection turns, alternating two kinds (seeded).

    ``undo``: after a turn that selected a non-target, the speaker asks to undo it and the
    listener deselects everything that turn newly selected, targets included (as the study's
    augmentation does: the listener cannot tell which of its picks were the wrong ones).
    ``clear``: after a turn that leaves images selected, the speaker asks to clear everything
    and the listener deselects all. The state
    message of a synthetic turn is the selection after the turn it follows.
    """
    wanted = round(real / SYNTHETIC_RATIO)
    rng = random.Random(seed)
    candidates: dict[str, list[tuple[GameRecord, int, frozenset[str]]]] = {"undo": [], "clear": []}
    for game in games:
        size = len(game.images)
        for position, turn in enumerate(game.turns):
            if not turn.action:
                continue
            after = selection_after(turn, size)
            picked = parse_action(turn.action, size).select - set(turn.selection)
            if picked - game.targets:
                candidates["undo"].append((game, position, frozenset(picked)))
            if after:
                candidates["clear"].append((game, position, frozenset(after)))
    for pool in candidates.values():
        rng.shuffle(pool)
    examples: list[Example] = []
    kinds = ["undo", "clear"]
    while len(examples) < wanted and any(candidates.values()):
        kind = kinds[len(examples) % 2]
        if not candidates[kind]:
            kind = kinds[(len(examples) + 1) % 2]
        game, position, letters = candidates[kind].pop()
        turns = game.turns[: position + 1]
        phrases = UNDO_UTTERANCES if kind == "undo" else CLEAR_UTTERANCES
        action = format_action(Action(deselect=letters))
        examples.append(
            Example(
                key=f"synthetic:{kind}:{turns[-1].turn_id}",
                group=f"synthetic:{kind}:{turns[-1].turn_id}",
                images=game.images,
                history=past_turns(turns),
                selection=selection_after(turns[-1], len(game.images)),
                utterance=rng.choice(phrases),
                action=action,
                prompt_format=game.prompt_format,
            )
        )
    return examples


def permuted(example: Example, rng: random.Random) -> Example:
    """The example with its images in a random order and every letter renamed to match, so the
    policy learns to bind letters to images rather than positions (data augmentation)."""
    size = len(example.images)
    order = list(range(size))
    rng.shuffle(order)
    images = tuple(example.images[i] for i in order)
    rename = {LETTERS[old]: LETTERS[new] for new, old in enumerate(order)}

    def letters(values: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(rename[v] for v in values))

    def action(text: str) -> str:
        parsed = parse_action(text, size)
        return format_action(
            Action(
                deselect=frozenset(rename[v] for v in parsed.deselect),
                select=frozenset(rename[v] for v in parsed.select),
            )
        )

    return replace(
        example,
        images=images,
        history=tuple(
            PastTurn(letters(t.selection), t.utterance, action(t.action)) for t in example.history
        ),
        selection=letters(example.selection),
        action=action(example.action),
    )


def example_from_dict(data: dict) -> Example:
    """The inverse of ``dataclasses.asdict`` for an Example (JSON job files)."""
    return Example(
        **{
            **data,
            "images": tuple(data["images"]),
            "selection": tuple(data["selection"]),
            "history": tuple(
                PastTurn(tuple(t["selection"]), t["utterance"], t["action"])
                for t in data["history"]
            ),
        }
    )


def content_hash(payload: dict) -> str:
    """SHA-256 of a manifest payload's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
