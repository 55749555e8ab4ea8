"""Reads and writes of live play's hot path, as SQL built once per process from the models.

A move locks one game row, reads its current turn, and writes the game, the turn and an event.
Through the ORM that cost several milliseconds of CPU per move on the web process, nearly all of
it in building queries and model instances, not in the database. Here each statement is built
once from the models' own metadata (table and column names, the backend's quoting and
placeholders), values go through the fields' own ``get_db_prep_save`` on the way in, and rows come
back through the backend's and the fields' converters into ordinary model instances, so the rules
in ``games.live.engine`` cannot tell which way a row travelled. Django's cursor is used, so
transactions, test databases and query logging behave as for any ORM query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Generic, TypeVar

from django.db import connections, models, router

from games.models import Game, GameConfig, GameEvent, Study, System, Turn

Converter = Callable[[object, object, object], object]
_M = TypeVar("_M", bound=models.Model)


@dataclass(frozen=True)
class _Reader(Generic[_M]):
    """How to turn a slice of a row into an instance of ``model`` (all concrete fields)."""

    model: type[_M]
    converters: tuple[tuple[int, tuple[Converter, ...], object], ...]
    width: int
    attnames: tuple[str, ...]

    def build(self, row: Sequence, start: int, alias: str, connection) -> _M:
        values = list(row[start : start + self.width])
        for index, converters, expression in self.converters:
            value = values[index]
            for convert in converters:
                value = convert(value, expression, connection)
            values[index] = value
        return self.model.from_db(alias, self.attnames, values)


def _qn(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def _concrete(field: models.Field | models.ForeignObjectRel) -> models.Field:
    """``field`` as a field of its own model's table (never the reverse side of a relation)."""
    if not isinstance(field, models.Field):
        raise TypeError(f"{field!r} is not a concrete field")
    return field


def _column(field: models.Field | models.ForeignObjectRel) -> str:
    """The column of a concrete field."""
    column = _concrete(field).column
    if column is None:
        raise TypeError(f"{field!r} has no column")
    return column


@cache
def _reader(model: type[_M], vendor: str) -> _Reader[_M]:
    connection = connections[router.db_for_read(model)]
    converters = []
    for index, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        chain = tuple(
            connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        )
        if chain:
            converters.append((index, chain, expression))
    fields = model._meta.concrete_fields
    return _Reader(model, tuple(converters), len(fields), tuple(f.attname for f in fields))


def _select_list(connection, model: type[models.Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_qn(connection, _column(f))}" for f in model._meta.concrete_fields)


@cache
def _game_sql(vendor: str, lock: bool) -> str:
    connection = connections[router.db_for_write(Game)]

    def qn(name: str) -> str:
        return _qn(connection, name)

    parts = [
        _select_list(connection, Game, "g"),
        _select_list(connection, Turn, "t"),
        _select_list(connection, Study, "s"),
        _select_list(connection, GameConfig, "c"),
        _select_list(connection, System, "y"),
    ]
    game, turn = Game._meta, Turn._meta
    locking = ""
    if lock and connection.features.has_select_for_update:
        of = connection.features.has_select_for_update_of
        locking = " FOR UPDATE OF g" if of else " FOR UPDATE"
    return (
        f"SELECT {', '.join(parts)} FROM {qn(game.db_table)} g"
        f" LEFT JOIN {qn(turn.db_table)} t"
        f" ON t.{qn(_column(turn.get_field('game')))} = g.{qn('id')}"
        f" AND t.{qn('index')} = g.{qn(_column(game.get_field('turn_index')))}"
        f" JOIN {qn(Study._meta.db_table)} s ON s.{qn('id')} = g.{qn('study_id')}"
        f" JOIN {qn(GameConfig._meta.db_table)} c ON c.{qn('id')} = g.{qn('config_id')}"
        f" JOIN {qn(System._meta.db_table)} y ON y.{qn('id')} = g.{qn('system_id')}"
        f" WHERE g.{qn('id')} = %s{locking}"
    )


def lock_game(game_id: int) -> Game | None:
    """The game row locked for this transaction, with its study, config, system and current turn
    (``current_turn``) loaded; None if there is no such game."""
    return _game(game_id, lock=True)


def read_game(game_id: int) -> Game | None:
    """The game as ``lock_game`` loads it, without locking it."""
    return _game(game_id, lock=False)


def _game(game_id: int, *, lock: bool) -> Game | None:
    alias = router.db_for_write(Game)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(_game_sql(connection.vendor, lock), [game_id])
        row = cursor.fetchone()
    if row is None:
        return None
    start = 0

    def read(model: type[_M]) -> _M:
        """The next slice of the row as a ``model``."""
        nonlocal start
        reader = _reader(model, connection.vendor)
        instance = reader.build(row, start, alias, connection)
        start += reader.width
        return instance

    game = read(Game)
    turn = None
    if row[start] is None:  # no current turn (the left join)
        start += _reader(Turn, connection.vendor).width
    else:
        turn = read(Turn)
    game.study, game.config, game.system = read(Study), read(GameConfig), read(System)
    remember_turn(game, turn)
    return game


def remember_turn(game: Game, turn: Turn | None) -> None:
    """Keep the current turn with the locked game, so the operation does not read it again."""
    game._live_turn = turn


def current_turn(game: Game) -> Turn | None:
    """The turn at ``game.turn_index`` (from ``lock_game`` when it still matches)."""
    turn = getattr(game, "_live_turn", None)
    if turn is not None and turn.index == game.turn_index:
        return turn
    turn = Turn.objects.filter(game_id=game.pk, index=game.turn_index).first()
    remember_turn(game, turn)
    return turn


@cache
def _turns_sql(vendor: str) -> str:
    connection = connections[router.db_for_read(Turn)]
    meta = Turn._meta
    return (
        f"SELECT {_select_list(connection, Turn, 't')} FROM {_qn(connection, meta.db_table)} t"
        f" WHERE t.{_qn(connection, _column(meta.get_field('game')))} = %s"
        f" ORDER BY t.{_qn(connection, 'index')}"
    )


def turns(game_id: int) -> list[Turn]:
    """All turns of a game in order."""
    alias = router.db_for_read(Turn)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(_turns_sql(connection.vendor), [game_id])
        rows = cursor.fetchall()
    reader = _reader(Turn, connection.vendor)
    return [reader.build(row, 0, alias, connection) for row in rows]


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], vendor: str) -> str:
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    assignments = ", ".join(
        f"{_qn(connection, _column(meta.get_field(name)))} = %s" for name in names
    )
    return (
        f"UPDATE {_qn(connection, meta.db_table)} SET {assignments}"
        f" WHERE {_qn(connection, _column(meta.pk))} = %s"
    )


def update(instance: models.Model, *names: str) -> None:
    """``instance.save(update_fields=names)`` without building the query each time."""
    if instance.pk is None:
        raise ValueError(f"cannot update an unsaved {type(instance).__name__}")
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    fields = [_concrete(model._meta.get_field(name)) for name in names]
    values = [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, tuple(names), connection.vendor), [*values, instance.pk])


@cache
def _insert_sql(model: type[models.Model], vendor: str) -> str:
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(_qn(connection, _column(f)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {_qn(connection, meta.db_table)} ({columns}) VALUES ({marks})"


def insert(instance: models.Model) -> None:
    """``instance.save()`` of a new row whose primary key is not needed afterwards."""
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, connection.vendor), values)


@cache
def _event_sql(vendor: str) -> str:
    connection = connections[router.db_for_write(GameEvent)]
    meta, game = GameEvent._meta, Game._meta

    def column(name: str) -> str:
        return _qn(connection, _column(meta.get_field(name)))

    columns = ", ".join(
        column(name) for name in ("game", "turn_index", "kind", "role", "payload", "created_at")
    )
    return (
        f"INSERT INTO {_qn(connection, meta.db_table)} ({columns})"
        f" SELECT g.{_qn(connection, _column(game.pk))},"
        f" g.{_qn(connection, _column(game.get_field('turn_index')))}, %s, %s, %s, %s"
        f" FROM {_qn(connection, game.db_table)} g WHERE g.{_qn(connection, _column(game.pk))} = %s"
    )


def record_event(game_id: int, kind: str, role: str, payload: dict, created_at) -> None:
    """Append an event at the game's current turn without reading the game first (nothing is
    stored if there is no such game)."""
    connection = connections[router.db_for_write(GameEvent)]
    meta = GameEvent._meta
    values = [
        meta.get_field("kind").get_db_prep_save(kind, connection),
        meta.get_field("role").get_db_prep_save(role, connection),
        meta.get_field("payload").get_db_prep_save(payload, connection),
        meta.get_field("created_at").get_db_prep_save(created_at, connection),
        game_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_event_sql(connection.vendor), values)
