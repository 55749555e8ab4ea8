"""Interaction records as plain data, checked on construction (pure; no ORM).

A ``GameRecord`` is one ended game with its ``TurnRecord``s, checked on construction for
everything that does not need the database or a study's settings: distinct images, both display
orders naming the same images, targets inside the context, well-formed selections that chain
from turn to turn, actions that match the selections, outcomes that match the final selection.
``games.importing`` adds the checks that need the database (tangrams exist) and the study
(context size, target count, turn limit, utterance length).

Records arrive in two layouts, each with its parser: the original study's game export
(``games.original_export``) and the platform's own JSONL export (``games.jsonl_records``,
written by ``games.exporting``). Every problem raises ``RecordError`` naming the game id and the
field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from config import bounded_json
from config.echo import clipped, shown
from games.actions import LETTERS, Action, format_action
from games.plain import plain

OUTCOMES = ("successful", "unsuccessful", "idle")
MAX_GAME_ID_CHARS = 64
MAX_END_REASON_CHARS = 120
MAX_ACTION_REASON_CHARS = 40
MAX_UTTERANCE_CHARS = 10_000
MAX_TANGRAM_ID_CHARS = 64
MAX_ERROR_DETAIL_CHARS = 600
MAX_METADATA_CHARS = 65_536
MAX_METADATA_DEPTH = 10
WORKER_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class RecordError(ValueError):
    """A record that cannot be imported; the message names the game (or line) and the field."""

    def __init__(
        self,
        message: str,
        *,
        game_id: str | None = None,
        field: str | None = None,
        location: str | None = None,
    ) -> None:
        # Ids, fields and messages can quote a file's content: each is kept short.
        game_id = None if game_id is None else clipped(game_id)
        field = None if field is None else clipped(field)
        location = None if location is None else clipped(location)
        message = clipped(message, MAX_ERROR_DETAIL_CHARS)
        self.game_id = game_id
        self.field = field
        self.location = location
        self.detail = message
        parts = []
        if location:
            parts.append(location)
        if game_id is not None:
            parts.append(f"game {game_id}")
        if field:
            parts.append(f"field '{field}'")
        super().__init__(": ".join([*parts, message]))


@dataclass(frozen=True)
class TurnRecord:
    """One turn: the speaker's utterance and the listener's answer.

    Selections are tuples of tangram ids (in listener order once inside a ``GameRecord``).
    ``selection_after`` is None when the listener never answered (the game ended idle on this
    turn); the action is then "" and ``action_reason`` says why. ``action`` is the canonical
    action string, "" for the empty action.
    """

    utterance: str
    selection_before: tuple[str, ...]
    selection_after: tuple[str, ...] | None
    action: str = ""
    action_reason: str = ""
    action_probability: float | None = None
    speaker_seconds: float | None = None
    listener_seconds: float | None = None
    started_at: datetime | None = None
    utterance_at: datetime | None = None
    submitted_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("selection_before", "selection_after"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class GameRecord:
    """One ended game, validated on construction (see the module docstring).

    ``speaker``/``listener`` are worker ids as in the source (raw platform ids), or keyed hashes
    when ``ids_are_hashes`` (the platform's own export), or None. ``created_at`` is when the game
    began (the JSONL's ``started_at``; stored as ``Game.started_at``, since ``Game.created_at``
    is when the row was written). ``metadata`` holds the remaining fields of the source record,
    JSON-safe.
    """

    game_id: str
    speaker_order: tuple[str, ...]
    listener_order: tuple[str, ...]
    targets: tuple[str, ...]
    outcome: str
    end_reason: str
    turns: tuple[TurnRecord, ...]
    speaker: str | None = None
    listener: str | None = None
    ids_are_hashes: bool = False
    created_at: datetime | None = None
    ended_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("speaker_order", "listener_order", "targets", "turns"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple):
                raise _fail(self, name, f"expected a list, got {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        _validate_game(self)
        object.__setattr__(self, "turns", _in_listener_order(self))

    @property
    def context(self) -> tuple[str, ...]:
        return self.speaker_order


def _fail(game: GameRecord, field_name: str, message: str) -> RecordError:
    return RecordError(message, game_id=game.game_id, field=field_name)


def _check_image_list(game: GameRecord, name: str, images: Sequence[object]) -> None:
    seen: set[str] = set()
    for image in images:
        if not isinstance(image, str) or not image or len(image) > MAX_TANGRAM_ID_CHARS:
            raise _fail(game, name, f"{shown(image)} is not a tangram id")
        if image in seen:
            raise _fail(game, name, f"{image} appears twice")
        seen.add(image)


def _check_optional_number(game: GameRecord, name: str, value: object, upper: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(game, name, f"{shown(value)} is not a number")
    if not 0 <= value <= upper:
        raise _fail(game, name, f"{value} is outside 0..{upper:g}")


def _validate_game(game: GameRecord) -> None:
    if not isinstance(game.game_id, str) or not game.game_id.strip():
        raise RecordError("a game id must be a non-empty string", game_id=repr(game.game_id))
    if len(game.game_id) > MAX_GAME_ID_CHARS:
        raise _fail(game, "game_id", f"longer than {MAX_GAME_ID_CHARS} characters")
    _check_image_list(game, "context", game.speaker_order)
    _check_image_list(game, "listener_order", game.listener_order)
    _check_image_list(game, "targets", game.targets)
    context = set(game.speaker_order)
    if not 2 <= len(context) <= len(LETTERS):
        raise _fail(game, "context", f"{len(context)} images; 2 to {len(LETTERS)} are possible")
    if set(game.listener_order) != context:
        extra = sorted(set(game.listener_order) ^ context)
        raise _fail(
            game, "listener_order", f"not the same images as the context ({', '.join(extra)})"
        )
    for target in game.targets:
        if target not in context:
            raise _fail(game, "targets", f"{target} is not in the context")
    if not game.targets:
        raise _fail(game, "targets", "no targets")
    if game.outcome not in OUTCOMES:
        raise _fail(game, "outcome", f"{shown(game.outcome)} is not one of {', '.join(OUTCOMES)}")
    if not isinstance(game.end_reason, str) or len(game.end_reason) > MAX_END_REASON_CHARS:
        raise _fail(game, "end_reason", f"must be text of at most {MAX_END_REASON_CHARS} chars")
    for role in ("speaker", "listener"):
        value = getattr(game, role)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise _fail(game, role, "a worker id must be 1-200 characters")
        if game.ids_are_hashes and not WORKER_HASH_PATTERN.match(value):
            raise _fail(game, role, "not a keyed worker hash (64 hex digits)")
    for name in ("created_at", "ended_at"):
        value = getattr(game, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise _fail(game, name, "must be a timezone-aware datetime")
    _check_metadata(game)
    _validate_turns(game)


def _check_metadata(game: GameRecord) -> None:
    """Metadata is a JSON-safe dict of at most ``MAX_METADATA_CHARS`` and ``MAX_METADATA_DEPTH``."""
    if not isinstance(game.metadata, dict):
        raise _fail(game, "metadata", "must be a dict")
    try:
        bounded_json.check_shape(
            game.metadata, max_depth=MAX_METADATA_DEPTH, max_values=MAX_METADATA_CHARS
        )
    except bounded_json.JSONLimitError as error:
        raise _fail(game, "metadata", str(error)) from error
    try:
        text = json.dumps(game.metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise _fail(game, "metadata", f"not JSON-safe ({error})") from error
    if len(text) > MAX_METADATA_CHARS:
        raise _fail(
            game, "metadata", f"{len(text):,} characters as JSON; at most {MAX_METADATA_CHARS:,}"
        )


def _validate_turns(game: GameRecord) -> None:
    if not game.turns:
        if game.outcome != "idle":
            raise _fail(game, "turns", f"a {game.outcome} game needs at least one turn")
        return
    context = set(game.speaker_order)
    letters = dict(zip(game.listener_order, LETTERS, strict=False))
    previous: frozenset[str] = frozenset()
    last = len(game.turns) - 1
    for index, turn in enumerate(game.turns):
        prefix = f"turns[{index}]"
        if not isinstance(turn, TurnRecord):
            raise _fail(game, prefix, "not a TurnRecord")
        if not isinstance(turn.utterance, str) or len(turn.utterance) > MAX_UTTERANCE_CHARS:
            raise _fail(game, f"{prefix}.utterance", f"text of at most {MAX_UTTERANCE_CHARS}")
        for name in ("selection_before", "selection_after"):
            selection = getattr(turn, name)
            if selection is None and name == "selection_after":
                continue
            if not isinstance(selection, tuple):
                raise _fail(game, f"{prefix}.{name}", "expected a list of tangram ids")
            _check_image_list(game, f"{prefix}.{name}", selection)
            outside = [image for image in selection if image not in context]
            if outside:
                raise _fail(
                    game, f"{prefix}.{name}", f"{clipped(outside[0])} is not in the context"
                )
        if frozenset(turn.selection_before) != previous:
            raise _fail(
                game, f"{prefix}.selection_before", "differs from the previous turn's selection"
            )
        if turn.selection_after is None:
            if index != last or game.outcome != "idle":
                raise _fail(
                    game,
                    f"{prefix}.selection_after",
                    "missing; only the last turn of an idle game may lack an answer",
                )
            if turn.action:
                raise _fail(game, f"{prefix}.action", "a turn without an answer has no action")
        else:
            derived = action_string(letters, turn.selection_before, turn.selection_after)
            if turn.action != derived:
                raise _fail(
                    game,
                    f"{prefix}.action",
                    f"{shown(turn.action)} does not turn the selection before into the one after "
                    f"({shown(derived)} does)",
                )
            previous = frozenset(turn.selection_after)
        if not isinstance(turn.action_reason, str) or len(turn.action_reason) > 40:
            raise _fail(game, f"{prefix}.action_reason", "text of at most 40 characters")
        _check_optional_number(game, f"{prefix}.action_probability", turn.action_probability, 1)
        _check_optional_number(game, f"{prefix}.speaker_seconds", turn.speaker_seconds, 1e6)
        _check_optional_number(game, f"{prefix}.listener_seconds", turn.listener_seconds, 1e6)
        for name in ("started_at", "utterance_at", "submitted_at"):
            value = getattr(turn, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise _fail(game, f"{prefix}.{name}", "must be a timezone-aware datetime")
    final = game.turns[-1].selection_after
    if game.outcome == "successful" and (final is None or set(final) != set(game.targets)):
        raise _fail(game, "outcome", "successful, but the last selection is not the targets")


def action_string(
    letters: Mapping[str, str], before: Iterable[str], after: Iterable[str] | None
) -> str:
    """Canonical action between two selections of context images (``letters``: image → letter)."""
    if after is None:
        return ""
    before_set, after_set = set(before), set(after)
    return format_action(
        Action(
            deselect=frozenset(letters[image] for image in before_set - after_set),
            select=frozenset(letters[image] for image in after_set - before_set),
        )
    )


def _in_listener_order(game: GameRecord) -> tuple[TurnRecord, ...]:
    """The turns with selections in listener order (a turn already in order is kept as is)."""
    position = {image: i for i, image in enumerate(game.listener_order)}

    def ordered(selection: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(selection, key=position.__getitem__))

    turns = []
    for turn in game.turns:
        before = ordered(turn.selection_before)
        after = None if turn.selection_after is None else ordered(turn.selection_after)
        if before != turn.selection_before or after != turn.selection_after:
            turn = replace(turn, selection_before=before, selection_after=after)
        turns.append(turn)
    return tuple(turns)


# A turn record's fields in order; a stored ``Turn`` has a column of each name, so imports and
# exports read and write turns through this one list.
TURN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TurnRecord))


def parse_timestamp(game_id: str, name: str, value: object) -> datetime | None:
    """An ISO 8601 timestamp field of a record (naive ones are UTC); None if empty."""
    value = plain(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{shown(value)} is not a timestamp", game_id=game_id, field=name)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise RecordError(
            f"{shown(value)} is not a timestamp", game_id=game_id, field=name
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
