"""The original study's game export, parsed into ``GameRecord``s (pure; no ORM).

The export is a dict of game records keyed by game id, with ``context`` (speaker order),
``context_listener``, ``targets``, ``chat[t]``, ``clicks[t]`` (the listener's selection after
turn t), ``turnList[t]`` (timings) and ``end``. Other fields are kept as the game's metadata,
except network addresses. Every problem raises ``RecordError`` naming the game id and the field.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.echo import clipped, shown
from games.actions import LETTERS
from games.plain import plain
from games.records import (
    GameRecord,
    RecordError,
    TurnRecord,
    action_string,
    parse_timestamp,
)

IDLE_REASONS = ("speaker idled", "listener idled")
IMAGE_SUFFIXES = (".png", ".svg")

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
            raise RecordError(f"{shown(image)} is not an image name", game_id=game_id, field=name)
        images.append(strip_image_suffix(image.strip()))
    if len(set(images)) != len(images):
        twice = sorted({image for image in images if images.count(image) > 1})
        raise RecordError(f"{clipped(', '.join(twice))} appears twice", game_id=game_id, field=name)
    return tuple(images)


def _number(game_id: str, name: str, value: object) -> float | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{shown(value)} is not a number", game_id=game_id, field=name)
    return float(value)


def _outcome_of_end(game_id: str, end: object) -> tuple[str, str]:
    if not isinstance(end, str):
        raise RecordError(f"{shown(end)} is not an ending", game_id=game_id, field="end")
    text = end.strip()
    if text in ("successful", "unsuccessful"):
        return text, text
    if text in IDLE_REASONS:
        return "idle", text
    raise RecordError(
        f"{shown(end)}: expected successful, unsuccessful, 'speaker idled' or 'listener idled'",
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
        raise RecordError(f"{shown(value)} is not a worker id", game_id=game_id, field=name)
    return value.strip()


def game_from_study_record(key: object, raw: object) -> GameRecord:
    """One game of the original study's export (``key`` is its id in the export's dict)."""
    if not isinstance(key, str) or not key.strip():
        raise RecordError(f"game id {shown(key)} is not a non-empty string")
    game_id = key.strip()
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a record, got {type(raw).__name__}", game_id=game_id)
    missing = [name for name in ("context", "targets", "chat", "clicks", "end") if name not in raw]
    if missing:
        raise RecordError("missing", game_id=game_id, field=missing[0])
    if raw.get("_id") not in (None, key):
        raise RecordError(
            f"{shown(raw['_id'])} differs from the key {shown(key)}", game_id=game_id, field="_id"
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
            raise RecordError(
                f"{shown(utterance)} is not text", game_id=game_id, field=f"chat[{index}]"
            )
        after: tuple[str, ...] | None = None
        if index < len(clicks):
            after = _image_list(game_id, f"clicks[{index}]", plain(clicks[index]))
            outside = [image for image in after if image not in context]
            if outside:
                raise RecordError(
                    f"{clipped(outside[0])} is not in the context",
                    game_id=game_id,
                    field=f"clicks[{index}]",
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
        created_at=parse_timestamp(game_id, "created_at", raw.get("created_at")),
        metadata=metadata,
    )


def records_from_study_export(data: object) -> list[GameRecord]:
    """All games of an export of the original study (a dict keyed by game id)."""
    if not isinstance(data, Mapping):
        raise RecordError(
            f"expected a dict of game records keyed by game id, got {type(data).__name__}"
        )
    return [game_from_study_record(key, raw) for key, raw in data.items()]
