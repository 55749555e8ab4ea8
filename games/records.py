"""Interaction records as plain data, and parsers for the layouts they arrive in (pure; no ORM).

A ``GameRecord`` is one ended game with its ``TurnRecord``s, checked on construction for
everything that does not need the database or a study's settings: distinct images, both display
orders naming the same images, targets inside the context, well-formed selections that chain
from turn to turn, actions that match the selections, outcomes that match the final selection.
``games.importing`` adds the checks that need the database (tangrams exist) and the study
(context size, target count, turn limit, utterance length).

Two layouts are parsed here:

* the original study's game export (``records_from_study_export``): a dict of game records keyed
  by game id, with ``context`` (speaker order), ``context_listener``, ``targets``, ``chat[t]``,
  ``clicks[t]`` (the listener's selection after turn t), ``turnList[t]`` (timings) and ``end``;
* the platform's own JSONL export (``records_from_jsonl``, written by ``games.exporting``).

Every problem raises ``RecordError`` naming the game id and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from games.actions import LETTERS, Action, format_action

OUTCOMES = ("successful", "unsuccessful", "idle")
IDLE_REASONS = ("speaker idled", "listener idled")
MAX_GAME_ID_CHARS = 64
MAX_END_REASON_CHARS = 120
MAX_ACTION_REASON_CHARS = 40
MAX_UTTERANCE_CHARS = 10_000
MAX_TANGRAM_ID_CHARS = 64
IMAGE_SUFFIXES = (".png", ".svg")
WORKER_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# Fields of the study layout that become columns, and fields never kept (network addresses).
STUDY_LAYOUT_FIELDS = frozenset(
    {
        "_id",
        "context",
        "context_listener",
        "targets",
        "chat",
        "clicks",
        "turnList",
        "end",
        "speaker",
        "listener",
        "created_at",
    }
)
PRIVATE_FIELDS = frozenset({"s ip", "l ip"})


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
            raise _fail(game, name, f"{image!r} is not a tangram id")
        if image in seen:
            raise _fail(game, name, f"{image} appears twice")
        seen.add(image)


def _check_optional_number(game: GameRecord, name: str, value: object, upper: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(game, name, f"{value!r} is not a number")
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
        raise _fail(game, "outcome", f"{game.outcome!r} is not one of {', '.join(OUTCOMES)}")
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
    if not isinstance(game.metadata, dict):
        raise _fail(game, "metadata", "must be a dict")
    try:
        json.dumps(game.metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise _fail(game, "metadata", f"not JSON-safe ({error})") from error
    _validate_turns(game)


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
                raise _fail(game, f"{prefix}.{name}", f"{outside[0]} is not in the context")
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
                    f"{turn.action!r} does not turn the selection before into the one after "
                    f"({derived!r} does)",
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


# Plain values -----------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars and arrays as Python values, NaN and ±inf as None."""
    if value is None or type(value) in (bool, str, int):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return plain(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return plain(tolist())
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a plain value")


# The original study's export layout ---------------------------------------------------------


def strip_image_suffix(name: str) -> str:
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _image_list(game_id: str, name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise RecordError(
            f"expected a list of image names, got {type(value).__name__}",
            game_id=game_id,
            field=name,
        )
    images = []
    for image in value:
        if not isinstance(image, str) or not image.strip():
            raise RecordError(f"{image!r} is not an image name", game_id=game_id, field=name)
        images.append(strip_image_suffix(image.strip()))
    if len(set(images)) != len(images):
        twice = sorted({image for image in images if images.count(image) > 1})
        raise RecordError(f"{', '.join(twice)} appears twice", game_id=game_id, field=name)
    return tuple(images)


def _number(game_id: str, name: str, value: object) -> float | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{value!r} is not a number", game_id=game_id, field=name)
    return float(value)


def _timestamp(game_id: str, name: str, value: object) -> datetime | None:
    value = plain(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{value!r} is not a timestamp", game_id=game_id, field=name)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise RecordError(f"{value!r} is not a timestamp", game_id=game_id, field=name) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _outcome_of_end(game_id: str, end: object) -> tuple[str, str]:
    if not isinstance(end, str):
        raise RecordError(f"{end!r} is not an ending", game_id=game_id, field="end")
    text = end.strip()
    if text in ("successful", "unsuccessful"):
        return text, text
    if text in IDLE_REASONS:
        return "idle", text
    raise RecordError(
        f"{end!r}: expected successful, unsuccessful, 'speaker idled' or 'listener idled'",
        game_id=game_id,
        field="end",
    )


def _worker_id(game_id: str, name: str, value: object) -> str | None:
    value = plain(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(f"{value!r} is not a worker id", game_id=game_id, field=name)
    return value.strip()


def game_from_study_record(key: object, raw: object) -> GameRecord:
    """One game of the original study's export (``key`` is its id in the export's dict)."""
    if not isinstance(key, str) or not key.strip():
        raise RecordError(f"game id {key!r} is not a non-empty string")
    game_id = key.strip()
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a record, got {type(raw).__name__}", game_id=game_id)
    missing = [name for name in ("context", "targets", "chat", "clicks", "end") if name not in raw]
    if missing:
        raise RecordError("missing", game_id=game_id, field=missing[0])
    if raw.get("_id") not in (None, key):
        raise RecordError(
            f"{raw['_id']!r} differs from the key {key!r}", game_id=game_id, field="_id"
        )
    speaker_order = _image_list(game_id, "context", raw["context"])
    listener_order = _image_list(
        game_id, "context_listener", raw.get("context_listener", raw["context"])
    )
    if set(listener_order) != set(speaker_order):
        raise RecordError(
            "not the same images as 'context'", game_id=game_id, field="context_listener"
        )
    targets = _image_list(game_id, "targets", raw["targets"])
    outcome, end_reason = _outcome_of_end(game_id, raw["end"])
    chat, clicks = raw["chat"], raw["clicks"]
    for name, value in (("chat", chat), ("clicks", clicks)):
        if not isinstance(value, list | tuple):
            raise RecordError(
                f"expected a list, got {type(value).__name__}", game_id=game_id, field=name
            )
    timings = plain(raw.get("turnList")) or []
    if not isinstance(timings, list):
        raise RecordError("expected a list", game_id=game_id, field="turnList")
    # A listener who idles leaves the last utterance unanswered: one click list fewer.
    unanswered = (
        outcome == "idle" and end_reason == "listener idled" and len(clicks) == len(chat) - 1
    )
    if len(clicks) != len(chat) and not unanswered:
        raise RecordError(
            f"{len(chat)} utterances but {len(clicks)} selections", game_id=game_id, field="clicks"
        )
    if len(timings) not in (0, len(clicks), len(chat)):
        raise RecordError(
            f"{len(timings)} entries for {len(chat)} turns", game_id=game_id, field="turnList"
        )
    context = set(speaker_order)
    letters = dict(zip(listener_order, LETTERS, strict=False))
    position = {image: i for i, image in enumerate(listener_order)}
    turns = []
    before: tuple[str, ...] = ()
    for index, utterance in enumerate(chat):
        utterance = plain(utterance)
        if utterance is None:
            utterance = ""
        if not isinstance(utterance, str):
            raise RecordError(f"{utterance!r} is not text", game_id=game_id, field=f"chat[{index}]")
        after: tuple[str, ...] | None = None
        if index < len(clicks):
            after = _image_list(game_id, f"clicks[{index}]", plain(clicks[index]))
            outside = [image for image in after if image not in context]
            if outside:
                raise RecordError(
                    f"{outside[0]} is not in the context", game_id=game_id, field=f"clicks[{index}]"
                )
            after = tuple(sorted(after, key=position.__getitem__))
        timing = timings[index] if index < len(timings) else {}
        if not isinstance(timing, dict):
            raise RecordError("expected a dict", game_id=game_id, field=f"turnList[{index}]")
        turns.append(
            TurnRecord(
                utterance=utterance,
                selection_before=before,
                selection_after=after,
                action=action_string(letters, before, after),
                action_reason="listener_idled" if after is None else "",
                speaker_seconds=_number(
                    game_id, f"turnList[{index}].secUntilSend", timing.get("secUntilSend")
                ),
                listener_seconds=_number(
                    game_id,
                    f"turnList[{index}].secBetweenSendAndSubmit",
                    timing.get("secBetweenSendAndSubmit"),
                ),
            )
        )
        if after is not None:
            before = after
    metadata = {
        str(name): plain(value)
        for name, value in raw.items()
        if name not in STUDY_LAYOUT_FIELDS and name not in PRIVATE_FIELDS
    }
    return GameRecord(
        game_id=game_id,
        speaker_order=speaker_order,
        listener_order=listener_order,
        targets=targets,
        outcome=outcome,
        end_reason=end_reason,
        turns=tuple(turns),
        speaker=_worker_id(game_id, "speaker", raw.get("speaker")),
        listener=_worker_id(game_id, "listener", raw.get("listener")),
        created_at=_timestamp(game_id, "created_at", raw.get("created_at")),
        metadata=metadata,
    )


def records_from_study_export(data: object) -> list[GameRecord]:
    """All games of an export of the original study (a dict keyed by game id)."""
    if not isinstance(data, Mapping):
        raise RecordError(
            f"expected a dict of game records keyed by game id, got {type(data).__name__}"
        )
    return [game_from_study_record(key, raw) for key, raw in data.items()]


# The platform's own JSONL -------------------------------------------------------------------


def _get(
    raw: Mapping[str, Any],
    game_id: str,
    key: str,
    types: tuple[type, ...],
    default: Any = ...,
    label: str | None = None,
) -> Any:
    """``raw[key]`` checked against ``types`` (bool is never taken for a number)."""
    name = label or key
    if key not in raw:
        if default is ...:
            raise RecordError("missing", game_id=game_id, field=name)
        return default
    value = raw[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise RecordError(f"{value!r} has the wrong type", game_id=game_id, field=name)
    return value


NUMBER_OR_NONE = (int, float, type(None))


def _turn_from_jsonl(game_id: str, prefix: str, item: Mapping[str, Any]) -> TurnRecord:
    def value(key: str, types: tuple[type, ...], default: Any = None) -> Any:
        return _get(item, game_id, key, types, default, label=f"{prefix}.{key}")

    after = value("selection_after", (list, type(None)))
    return TurnRecord(
        utterance=value("utterance", (str,), ""),
        selection_before=value("selection_before", (list,), []),
        selection_after=after,
        action=value("action", (str,), ""),
        action_reason=value("action_reason", (str,), ""),
        action_probability=value("probability", NUMBER_OR_NONE),
        speaker_seconds=value("speaker_seconds", NUMBER_OR_NONE),
        listener_seconds=value("listener_seconds", NUMBER_OR_NONE),
        started_at=_timestamp(game_id, f"{prefix}.started_at", item.get("started_at")),
        utterance_at=_timestamp(game_id, f"{prefix}.utterance_at", item.get("utterance_at")),
        submitted_at=_timestamp(game_id, f"{prefix}.submitted_at", item.get("submitted_at")),
    )


def game_from_jsonl_object(raw: object, location: str = "") -> GameRecord:
    """One line of the platform's JSONL export, decoded (plain JSON data: no NaN, no numpy)."""
    if not isinstance(raw, dict):
        raise RecordError("expected a JSON object", location=location)
    game_id = raw.get("game_id")
    if not isinstance(game_id, str) or not game_id.strip():
        raise RecordError("missing or empty", field="game_id", location=location)
    try:
        turns_raw = _get(raw, game_id, "turns", (list,))
        turns = []
        for index, item in enumerate(turns_raw):
            if not isinstance(item, dict):
                raise RecordError("expected an object", game_id=game_id, field=f"turns[{index}]")
            turns.append(_turn_from_jsonl(game_id, f"turns[{index}]", item))
        metadata = _get(raw, game_id, "metadata", (dict,), {})
        return GameRecord(
            game_id=game_id,
            speaker_order=_get(raw, game_id, "context", (list,)),
            listener_order=_get(raw, game_id, "listener_order", (list,)),
            targets=_get(raw, game_id, "targets", (list,)),
            outcome=_get(raw, game_id, "outcome", (str,)),
            end_reason=_get(raw, game_id, "end_reason", (str,), ""),
            turns=tuple(turns),
            speaker=_get(raw, game_id, "speaker", (str, type(None)), None),
            listener=_get(raw, game_id, "listener", (str, type(None)), None),
            ids_are_hashes=True,
            created_at=_timestamp(game_id, "started_at", raw.get("started_at")),
            ended_at=_timestamp(game_id, "ended_at", raw.get("ended_at")),
            metadata=metadata,
        )
    except RecordError as error:
        if location and not error.location:
            raise RecordError(
                error.detail, game_id=error.game_id, field=error.field, location=location
            ) from error
        raise


def records_from_jsonl(lines: Iterable[str]) -> list[GameRecord]:
    """All games of a JSONL export; blank lines are ignored, bad JSON names its line."""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            # NaN and ±Infinity (which Python's json writes) mean missing values.
            raw = json.loads(line, parse_constant=lambda _: None)
        except json.JSONDecodeError as error:
            raise RecordError(f"not valid JSON ({error.msg})", location=location) from error
        records.append(game_from_jsonl_object(raw, location))
    return records
