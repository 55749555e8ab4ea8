"""The platform's own JSONL export (written by ``games.exporting``), parsed into
``GameRecord``s (pure; no ORM).

One game per line; blank lines are ignored. Every problem raises ``RecordError`` naming the line,
the game id and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from config import bounded_json
from config.echo import shown
from games.records import GameRecord, RecordError, TurnRecord, parse_timestamp


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
        raise RecordError(f"{shown(value)} has the wrong type", game_id=game_id, field=name)
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
        started_at=parse_timestamp(game_id, f"{prefix}.started_at", item.get("started_at")),
        utterance_at=parse_timestamp(game_id, f"{prefix}.utterance_at", item.get("utterance_at")),
        submitted_at=parse_timestamp(game_id, f"{prefix}.submitted_at", item.get("submitted_at")),
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
            created_at=parse_timestamp(game_id, "started_at", raw.get("started_at")),
            ended_at=parse_timestamp(game_id, "ended_at", raw.get("ended_at")),
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
            raw = bounded_json.loads(line, parse_constant=lambda _: None)
        except json.JSONDecodeError as error:
            raise RecordError(f"not valid JSON ({error.msg})", location=location) from error
        except bounded_json.JSONLimitError as error:
            raise RecordError(f"refused: {error}", location=location) from error
        records.append(game_from_jsonl_object(raw, location))
    return records
