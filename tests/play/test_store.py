"""``games.live.store``'s hand-built SQL reads and writes the same rows as the ORM."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from games.live import engine, store
from games.models import Game, GameEvent, Turn

from .live_game import start_game

pytestmark = pytest.mark.django_db


def values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def played_game(clock) -> Game:
    game, speaker, listener = start_game(clock())
    engine.submit_utterance(game.pk, speaker.pk, "the tall one")
    engine.toggle(game.pk, listener.pk, "page1-3")
    engine.submit_selection(game.pk, listener.pk)
    engine.submit_utterance(game.pk, speaker.pk, "now the bird")
    return game


def test_a_game_reads_the_same_through_the_store_and_the_orm(clock):
    game = played_game(clock)
    orm = Game.objects.select_related("study", "config", "system").get(pk=game.pk)
    with transaction.atomic():
        locked = store.lock_game(game.pk)
    for read in (locked, store.read_game(game.pk)):
        assert values(read) == values(orm)
        assert values(read.study) == values(orm.study)
        assert values(read.config) == values(orm.config)
        assert values(read.system) == values(orm.system)
        current = Turn.objects.get(game=game, index=orm.turn_index)
        assert values(store.current_turn(read)) == values(current)
    assert orm.turn_index == 1 and orm.turns.get(index=0).selection_after == ["page1-3"]
    assert store.read_game(game.pk + 1000) is None


def test_turns_read_the_same_through_the_store_and_the_orm(clock):
    game = played_game(clock)
    assert [values(t) for t in store.turns(game.pk)] == [
        values(t) for t in Turn.objects.filter(game=game).order_by("index")
    ]


def test_writes_through_the_store_are_what_the_orm_reads_back(clock):
    game = played_game(clock)
    with transaction.atomic():
        locked = store.lock_game(game.pk)
        locked.deadline = clock() + timedelta(seconds=7)
        locked.speaker_warnings = 2
        store.update(locked, "deadline", "speaker_warnings")
        turn = store.current_turn(locked)
        turn.utterance = "ünïcode, 'quotes' and %s"
        store.update(turn, "utterance")
    game.refresh_from_db()
    assert (game.deadline, game.speaker_warnings) == (clock() + timedelta(seconds=7), 2)
    assert Turn.objects.get(game=game, index=1).utterance == "ünïcode, 'quotes' and %s"

    before = GameEvent.objects.count()
    store.record_event(game.pk, "note", "speaker", {"nested": [1, "two"]}, clock())
    store.record_event(game.pk + 1000, "note", "speaker", {}, clock())  # no such game: nothing
    assert GameEvent.objects.count() == before + 1
    event = GameEvent.objects.filter(game=game).latest("pk")
    assert (event.turn_index, event.kind, event.role, event.payload, event.created_at) == (
        1,
        "note",
        "speaker",
        {"nested": [1, "two"]},
        clock(),
    )
