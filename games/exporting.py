"""Exporting a study's ended games as JSONL, one game per line, streamed from the database.

Games are read with ``values_list`` in chunks and their turns with one query per chunk, so
memory stays flat however many games a study holds. Workers appear only as keyed hashes. The
output is what ``games.jsonl_records.records_from_jsonl`` reads, so an export imported into another
study reproduces the same games.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from games.models import Game, Study, Turn
from games.records import TURN_FIELDS

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

FORMATS = ("jsonl",)
CHUNK_SIZE = 2000

GAME_COLUMNS = (
    "id",
    "external_id",
    "round__index",
    "system__name",
    "status",
    "outcome",
    "end_reason",
    "config__speaker_order",
    "config__listener_order",
    "config__targets",
    "speaker__id_hash",
    "listener__id_hash",
    "started_at",
    "ended_at",
    "metadata",
)
TURN_COLUMNS = ("game_id", *TURN_FIELDS)


@dataclass(frozen=True)
class ExportResult:
    games: int
    turns: int


def _number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _turn_dict(index: int, row: tuple) -> dict[str, Any]:
    """One turn as the JSONL holds it (``row``: a ``TURN_COLUMNS`` row)."""
    turn = dict(zip(TURN_FIELDS, row[1:], strict=True))
    return {
        "index": index,
        "utterance": turn["utterance"],
        "selection_before": turn["selection_before"],
        "selection_after": turn["selection_after"],
        "action": turn["action"],
        "action_reason": turn["action_reason"],
        "probability": _number(turn["action_probability"]),
        "speaker_seconds": _number(turn["speaker_seconds"]),
        "listener_seconds": _number(turn["listener_seconds"]),
        "started_at": _time(turn["started_at"]),
        "utterance_at": _time(turn["utterance_at"]),
        "submitted_at": _time(turn["submitted_at"]),
    }


def iter_game_dicts(
    study: Study, *, round_index: int | None = None, system_name: str | None = None
) -> Iterator[dict[str, Any]]:
    """The study's ended games as JSON-ready dicts, in round, system and creation order."""
    games = Game.objects.filter(study=study, status=Game.Status.ENDED)
    if round_index is not None:
        games = games.filter(round__index=round_index)
    if system_name is not None:
        games = games.filter(system__name=system_name)
    rows = games.order_by("round__index", "system__name", "id").values_list(*GAME_COLUMNS)
    chunk: list[tuple] = []
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        chunk.append(row)
        if len(chunk) == CHUNK_SIZE:
            yield from _chunk_dicts(study, chunk)
            chunk = []
    if chunk:
        yield from _chunk_dicts(study, chunk)


def _chunk_dicts(study: Study, rows: list[tuple]) -> Iterator[dict[str, Any]]:
    turns: dict[int, list[dict[str, Any]]] = {row[0]: [] for row in rows}
    turn_rows = (
        Turn.objects.filter(game_id__in=list(turns))
        .order_by("game_id", "index")
        .values_list(*TURN_COLUMNS)
    )
    for turn in turn_rows:
        game_turns = turns[turn[0]]
        game_turns.append(_turn_dict(len(game_turns), turn))
    for row in rows:
        (
            pk,
            external_id,
            round_index,
            system_name,
            status,
            outcome,
            end_reason,
            speaker_order,
            listener_order,
            targets,
            speaker,
            listener,
            started_at,
            ended_at,
            metadata,
        ) = row
        yield {
            "game_id": external_id,
            "study": study.name,
            "round": round_index,
            "system": system_name,
            "status": status,
            "outcome": outcome,
            "end_reason": end_reason,
            "context": speaker_order,
            "listener_order": listener_order,
            "targets": targets,
            "speaker": speaker,
            "listener": listener,
            "started_at": _time(started_at),
            "ended_at": _time(ended_at),
            "metadata": metadata,
            "turns": turns[pk],
        }


def write_jsonl(
    stream: SupportsWrite[str],
    study: Study,
    *,
    round_index: int | None = None,
    system_name: str | None = None,
) -> ExportResult:
    games = turns = 0
    for game in iter_game_dicts(study, round_index=round_index, system_name=system_name):
        stream.write(json.dumps(game, ensure_ascii=False, allow_nan=False) + "\n")
        games += 1
        turns += len(game["turns"])
    return ExportResult(games=games, turns=turns)


def export_games_file(
    path: str | Path,
    study: Study,
    *,
    round_index: int | None = None,
    system_name: str | None = None,
) -> ExportResult:
    """Write the export to ``path`` atomically: a failed export leaves no partial file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            result = write_jsonl(stream, study, round_index=round_index, system_name=system_name)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return result
