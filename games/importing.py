"""Importing interaction records into a study: all or nothing, idempotent, in bulk.

``import_game_records`` checks every record against the database (tangrams exist) and the
study's settings (context size, target count, turn limit, utterance length) before it writes
anything, then writes games, configs, turns and workers with a handful of bulk queries inside
one transaction. A game whose id is already in the study is skipped when its stored content is
identical to the record, and is an error naming the game when it differs. Worker ids are stored
only as keyed hashes (platform ``import``, raw id not kept).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import JSONField, Model
from django.utils import timezone

from config import bounded_json
from games.jsonl_records import records_from_jsonl
from games.models import Game, GameConfig, Round, Study, System, Tangram, Turn, Worker
from games.original_export import records_from_study_export
from games.records import TURN_FIELDS, GameRecord, RecordError, TurnRecord
from games.rounds import SystemSpec, ensure_round, ensure_system
from games.safe_pickle import load_pickle
from games.workers import hash_worker_id

IMPORT_PLATFORM = Worker.Platform.IMPORT
BATCH_SIZE = 2000
SUPPORTED_SUFFIXES = (".json", ".pkl", ".pickle", ".jsonl")
MAX_IMPORT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ImportResult:
    created: int
    skipped: int
    turns_created: int

    @property
    def summary(self) -> str:
        """One line for people: what was imported and what was already there."""
        total = self.created + self.skipped
        if not total:
            return "nothing to import: no games in the input"
        if not self.created:
            return f"nothing to import: all {total} games already present"
        text = f"imported {self.created} games ({self.turns_created} turns)"
        return f"{text}; {self.skipped} already present" if self.skipped else text


# Reading files ------------------------------------------------------------------------------


def read_records(path: str | Path) -> list[GameRecord]:
    """Records from a file: the original study's export (.json, .pkl) or the platform's .jsonl."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RecordError(
            f"unsupported file type {suffix or '(none)'}; use {', '.join(SUPPORTED_SUFFIXES)}",
            location=path.name,
        )
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise RecordError(f"larger than {MAX_IMPORT_BYTES:,} bytes", location=path.name)
        if suffix == ".jsonl":
            with path.open(encoding="utf-8") as lines:
                return records_from_jsonl(lines)
        if suffix == ".json":
            # NaN and ±Infinity (which Python's json writes) mean missing values.
            text = path.read_text(encoding="utf-8")
            data = bounded_json.loads(text, parse_constant=lambda _: None)
        else:
            data = load_pickle(path)
    except OSError as error:
        raise RecordError(f"cannot read the file ({error.strerror})", location=path.name) from error
    except UnicodeDecodeError as error:
        raise RecordError("not UTF-8 text", location=path.name) from error
    except json.JSONDecodeError as error:
        raise RecordError(
            f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})",
            location=path.name,
        ) from error
    except bounded_json.JSONLimitError as error:
        raise RecordError(f"refused: {error}", location=path.name) from error
    except pickle.UnpicklingError as error:
        raise RecordError(str(error), location=path.name) from error
    return records_from_study_export(data)


# Checks against the study and the database --------------------------------------------------


def check_against_study(records: Sequence[GameRecord], study: Study) -> None:
    """Raise ``RecordError`` for the first record that breaks the study's settings."""
    seen: set[str] = set()
    for record in records:
        game_id = record.game_id
        if game_id in seen:
            raise RecordError("appears twice in the import", game_id=game_id, field="game_id")
        seen.add(game_id)
        if len(record.speaker_order) != study.context_size:
            raise RecordError(
                f"{len(record.speaker_order)} images; study {study.name} uses {study.context_size}",
                game_id=game_id,
                field="context",
            )
        if not study.min_targets <= len(record.targets) <= study.max_targets:
            raise RecordError(
                f"{len(record.targets)} targets; study {study.name} uses "
                f"{study.min_targets} to {study.max_targets}",
                game_id=game_id,
                field="targets",
            )
        if len(record.turns) > study.turn_limit:
            raise RecordError(
                f"{len(record.turns)} turns; study {study.name} allows {study.turn_limit}",
                game_id=game_id,
                field="turns",
            )
        for index, turn in enumerate(record.turns):
            if len(turn.utterance) > study.max_utterance_chars:
                raise RecordError(
                    f"{len(turn.utterance)} characters; study {study.name} allows "
                    f"{study.max_utterance_chars}",
                    game_id=game_id,
                    field=f"turns[{index}].utterance",
                )


def check_tangrams_exist(records: Iterable[GameRecord]) -> None:
    records = list(records)
    names = {name for record in records for name in record.speaker_order}
    known = set(Tangram.objects.filter(name__in=names).values_list("name", flat=True))
    if known == names:
        return
    for record in records:
        unknown = [name for name in record.speaker_order if name not in known]
        if unknown:
            raise RecordError(
                f"tangram {unknown[0]} is not in the database (import the tangrams first)",
                game_id=record.game_id,
                field="context",
            )


# Comparing with what is stored --------------------------------------------------------------


def _worker_hash(record: GameRecord, raw_id: str | None) -> str | None:
    if raw_id is None:
        return None
    return raw_id if record.ids_are_hashes else hash_worker_id(IMPORT_PLATFORM, raw_id)


def _record_content(record: GameRecord, round_index: int, system_name: str) -> dict[str, Any]:
    return {
        "round": round_index,
        "system": system_name,
        "speaker_order": list(record.speaker_order),
        "listener_order": list(record.listener_order),
        "targets": list(record.targets),
        "outcome": record.outcome,
        "end_reason": record.end_reason,
        "speaker": _worker_hash(record, record.speaker),
        "listener": _worker_hash(record, record.listener),
        "started_at": record.created_at,
        "ended_at": record.ended_at,
        "metadata": record.metadata,
        "turns": [(index, *_turn_values(turn)) for index, turn in enumerate(record.turns)],
    }


# A stored turn as ``_stored_contents`` reads it and ``_record_content`` shapes it.
TURN_COLUMNS = ("index", *TURN_FIELDS)


def _turn_values(turn: TurnRecord) -> tuple:
    """A turn's values in ``TURN_FIELDS`` order, as a ``Turn`` row holds them (lists, not
    tuples)."""
    values = (getattr(turn, name) for name in TURN_FIELDS)
    return tuple(list(value) if isinstance(value, tuple) else value for value in values)


def _turn_row(turn: TurnRecord) -> dict[str, Any]:
    return dict(zip(TURN_FIELDS, _turn_values(turn), strict=True))


def _stored_contents(study: Study, game_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Content of the study's games among ``game_ids``, shaped like ``_record_content``."""
    if not game_ids:
        return {}
    rows = Game.objects.filter(study=study, external_id__in=game_ids).values_list(
        "id",
        "external_id",
        "round__index",
        "system__name",
        "config__speaker_order",
        "config__listener_order",
        "config__targets",
        "outcome",
        "end_reason",
        "speaker__id_hash",
        "listener__id_hash",
        "started_at",
        "ended_at",
        "metadata",
    )
    contents: dict[str, dict[str, Any]] = {}
    by_pk: dict[int, list] = {}
    for row in rows:
        turns: list = []
        by_pk[row[0]] = turns
        contents[row[1]] = dict(
            zip(
                (
                    "round",
                    "system",
                    "speaker_order",
                    "listener_order",
                    "targets",
                    "outcome",
                    "end_reason",
                    "speaker",
                    "listener",
                    "started_at",
                    "ended_at",
                    "metadata",
                ),
                row[2:],
                strict=True,
            ),
            turns=turns,
        )
    turn_rows = (
        Turn.objects.filter(game_id__in=list(by_pk))
        .order_by("game_id", "index")
        .values_list("game_id", *TURN_COLUMNS)
    )
    for game_pk, *values in turn_rows.iterator(chunk_size=5000):
        by_pk[game_pk].append(tuple(values))
    return contents


def _differing_field(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    for name, value in wanted.items():
        if name == "turns":
            for index, (a, b) in enumerate(zip(stored["turns"], value, strict=False)):
                if a != b:
                    field = next(f for f, x, y in zip(TURN_COLUMNS, a, b, strict=True) if x != y)
                    return f"turns[{index}].{field}"
            if len(stored["turns"]) != len(value):
                return "turns"
        elif stored[name] != value:
            return name
    return ""


# Writing ------------------------------------------------------------------------------------


def _workers_by_hash(hashes: set[str]) -> dict[str, int]:
    if not hashes:
        return {}
    existing = dict(
        Worker.objects.filter(platform=IMPORT_PLATFORM, id_hash__in=hashes).values_list(
            "id_hash", "id"
        )
    )
    missing = hashes - set(existing)
    if missing:
        Worker.objects.bulk_create(
            [Worker(platform=IMPORT_PLATFORM, id_hash=h) for h in sorted(missing)],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        existing.update(
            Worker.objects.filter(platform=IMPORT_PLATFORM, id_hash__in=missing).values_list(
                "id_hash", "id"
            )
        )
    return existing


def _column_values(model: type[Model], rows: Sequence[dict[str, Any]]) -> tuple[list, list]:
    """The non-pk columns of ``model`` and, per row, the values to store in them.

    Fields a row leaves out get their model default (``auto_now`` fields the current time), so
    fields added to the model later need no change here.
    """
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    now = timezone.now()
    defaults = {
        field.attname: (
            now
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            else field.get_default()
        )
        for field in fields
    }
    json_fields = {field.attname: field.encoder for field in fields if isinstance(field, JSONField)}

    def prepared(name: str, value: Any) -> Any:
        if name in json_fields and value is not None:
            return json.dumps(value, cls=json_fields[name])
        return value

    values = [
        [
            prepared(field.attname, row.get(field.attname, defaults[field.attname]))
            for field in fields
        ]
        for row in rows
    ]
    return fields, values


def _insert(model: type[Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (attname → value) and return their primary keys, in order.

    On PostgreSQL the keys are drawn from the table's sequence and the rows sent with COPY, the
    fastest way in; other databases (the SQLite demo) use ``bulk_create``.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = model._default_manager.bulk_create(
            [model(**row) for row in rows], batch_size=BATCH_SIZE
        )
        return [obj.pk for obj in objects]
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    fields, values = _column_values(model, rows)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in [pk_column, *(f.column for f in fields)])
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk_column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, row in zip(ids, values, strict=True):
                copy.write_row([pk, *row])
    return ids


def _create_games(
    records: Sequence[GameRecord], study: Study, round_: Round, system: System
) -> int:
    speakers = [_worker_hash(r, r.speaker) for r in records]
    listeners = [_worker_hash(r, r.listener) for r in records]
    workers = _workers_by_hash({h for h in speakers + listeners if h})
    config_ids = _insert(
        GameConfig,
        [
            {
                "study_id": study.pk,
                "speaker_order": list(r.speaker_order),
                "listener_order": list(r.listener_order),
                "targets": list(r.targets),
            }
            for r in records
        ],
    )
    game_ids = _insert(
        Game,
        [
            {
                "study_id": study.pk,
                "round_id": round_.pk,
                "system_id": system.pk,
                "config_id": config_id,
                "external_id": r.game_id,
                "speaker_id": workers[speaker] if speaker else None,
                "listener_id": workers[listener] if listener else None,
                "status": Game.Status.ENDED,
                "outcome": r.outcome,
                "end_reason": r.end_reason,
                "started_at": r.created_at,
                "ended_at": r.ended_at,
                "metadata": r.metadata,
            }
            for r, config_id, speaker, listener in zip(
                records, config_ids, speakers, listeners, strict=True
            )
        ],
    )
    turns = [
        {"game_id": game_id, "index": index, **_turn_row(turn)}
        for record, game_id in zip(records, game_ids, strict=True)
        for index, turn in enumerate(record.turns)
    ]
    _insert(Turn, turns)
    return len(turns)


def import_game_records(
    records: Sequence[GameRecord], *, study: Study, round_index: int, system_name: str
) -> ImportResult:
    """Import ``records`` into ``study`` under round ``round_index`` and system ``system_name``.

    All or nothing: any bad record raises ``RecordError`` (naming game and field) and nothing is
    written. Games already present with identical content are skipped and counted as such.
    """
    records = list(records)
    if round_index < 0:
        raise RecordError(f"round must be 0 or more, got {round_index}", field="round")
    system_name = system_name.strip()
    max_length = System._meta.get_field("name").max_length
    if not system_name or (max_length is not None and len(system_name) > max_length):
        raise RecordError("system name must be 1-40 characters", field="system")
    check_against_study(records, study)
    check_tangrams_exist(records)
    with transaction.atomic():
        stored = _stored_contents(study, [r.game_id for r in records])
        new_records = []
        for record in records:
            if record.game_id not in stored:
                new_records.append(record)
                continue
            wanted = _record_content(record, round_index, system_name)
            field = _differing_field(stored[record.game_id], wanted)
            if field:
                raise RecordError(
                    f"already in study {study.name} with different content",
                    game_id=record.game_id,
                    field=field,
                )
        turns_created = 0
        if new_records:
            round_ = ensure_round(study, round_index)
            system = ensure_system(round_, SystemSpec(system_name))
            try:
                with transaction.atomic():
                    turns_created = _create_games(new_records, study, round_, system)
            except DatabaseError as error:
                raise RecordError(f"the database refused the import ({error})") from error
    return ImportResult(
        created=len(new_records),
        skipped=len(records) - len(new_records),
        turns_created=turns_created,
    )


def import_games_file(
    path: str | Path, *, study_name: str, round_index: int, system_name: str
) -> ImportResult:
    """Read a file and import it, creating the study (default settings) if it is missing."""
    records = read_records(path)
    with transaction.atomic():
        study, _ = Study.objects.get_or_create(name=study_name)
        return import_game_records(
            records, study=study, round_index=round_index, system_name=system_name
        )
