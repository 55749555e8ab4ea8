"""The rules of a live game, driven through the engine with a controllable clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from games.live import engine
from games.live.engine import PlayError
from games.live.selectors import worker_game_earnings
from games.models import GameEarning, GameEvent, Turn

from . import helpers
from .live_game import start_game

pytestmark = pytest.mark.django_db


def test_a_full_game_to_success_is_stored_step_by_step(clock):
    game, speaker, listener = start_game(clock(), correct_click_bonus=Decimal("0.05"))
    clock.advance(3)
    engine.submit_utterance(game.pk, speaker.pk, "  the tall\tone  ")
    clock.advance(2)
    engine.toggle(game.pk, listener.pk, "page1-0")
    engine.toggle(game.pk, listener.pk, "page1-5")
    clock.advance(4)
    change = engine.submit_selection(game.pk, listener.pk)
    assert change.views["speaker"]["selection"] == ["page1-5", "page1-0"]
    assert "targets" not in str(change.views["listener"]) and all(
        "target" not in image for image in change.views["listener"]["images"]
    )
    engine.submit_utterance(game.pk, speaker.pk, "not the bird")
    for name in ("page1-5", "page1-1", "page1-2"):
        engine.toggle(game.pk, listener.pk, name)
    change = engine.submit_selection(game.pk, listener.pk)

    game.refresh_from_db()
    assert (game.status, game.outcome, game.end_reason) == (
        "ended",
        "successful",
        "all targets selected",
    )
    turns = list(game.turns.order_by("index"))
    assert [t.utterance for t in turns] == ["the tall one", "not the bird"]
    # Listener letters: page1-9 is A ... page1-0 is J.
    assert [t.action for t in turns] == ["select E J", "deselect E select H I"]
    assert turns[0].selection_after == ["page1-5", "page1-0"]
    assert turns[1].selection_before == ["page1-5", "page1-0"]
    assert turns[1].selection_after == ["page1-2", "page1-1", "page1-0"]
    assert (turns[0].speaker_seconds, turns[0].listener_seconds) == (3.0, 6.0)
    kinds = list(game.events.values_list("kind", flat=True))
    assert kinds == [
        "start",
        "utterance",
        "toggle",
        "toggle",
        "submit",
        "utterance",
        "toggle",
        "toggle",
        "toggle",
        "submit",
        "end",
    ]
    # 4 of 5 clicks correct: base 0.81 + success 0.20 + 4 x 0.05 for each player.
    for worker in (speaker, listener):
        assert worker_game_earnings(worker) == Decimal("1.21")
    assert change.views["listener"]["earned_total"] == "1.21"
    assert change.views["speaker"]["clicks"] == {"correct": 4, "total": 5}


def test_the_turn_limit_ends_the_game_unsuccessfully(clock):
    game, speaker, listener = start_game(clock(), turn_limit=2)
    for _ in range(2):
        engine.submit_utterance(game.pk, speaker.pk, "left one")
        engine.submit_selection(game.pk, listener.pk, [])
    game.refresh_from_db()
    assert (game.outcome, game.end_reason, game.turns.count()) == (
        "unsuccessful",
        "turn limit reached",
        2,
    )
    assert [t.action for t in game.turns.all()] == ["", ""]


def test_a_speaker_who_misses_the_turn_ends_the_game_and_is_not_paid(clock):
    game, speaker, listener = start_game(clock())
    # Turn 0 allows 25 s plus 5 s to join; timeouts apply one second of grace later.
    clock.advance(30.9)
    assert engine.expire_due(game.pk) is None
    clock.advance(0.1)
    change = engine.expire_due(game.pk)
    assert change.ended
    game.refresh_from_db()
    assert (game.outcome, game.end_reason) == ("idle", "speaker idled")
    assert worker_game_earnings(speaker) == Decimal("0.00")
    assert worker_game_earnings(listener) == Decimal("0.81")
    assert engine.expire_due(game.pk) is None


def test_with_warnings_a_first_miss_warns_and_the_second_ends(clock):
    game, speaker, listener = start_game(clock(), idle_ends_game=False)
    clock.advance(31)
    engine.expire_due(game.pk)
    game.refresh_from_db()
    assert (game.status, game.speaker_warnings, game.phase) == ("playing", 1, "speaker")
    assert game.deadline == clock() + timedelta(seconds=25)
    engine.submit_utterance(game.pk, speaker.pk, "the fish")
    clock.advance(46)
    engine.expire_due(game.pk)
    turn = Turn.objects.get(game=game, index=0)
    assert (turn.action, turn.action_reason, turn.selection_after) == ("", "listener_timeout", [])
    game.refresh_from_db()
    assert (game.listener_warnings, game.turn_index, game.phase) == (1, 1, "speaker")
    engine.submit_utterance(game.pk, speaker.pk, "the fish again")
    clock.advance(46)
    engine.expire_due(game.pk)
    game.refresh_from_db()
    assert (game.outcome, game.end_reason) == ("idle", "listener idled")


def test_a_slow_model_gets_the_empty_action_and_the_game_goes_on(clock):
    game, speaker, _ = start_game(clock(), "B-FFT", listener=False)
    change = engine.submit_utterance(game.pk, speaker.pk, "the fish")
    assert change.model_turn == 0
    clock.advance(46)
    engine.expire_due(game.pk)
    game.refresh_from_db()
    turn = game.turns.get(index=0)
    assert (turn.action, turn.action_reason, turn.selection_after) == ("", "model_timeout", [])
    assert (game.status, game.phase, game.turn_index) == ("playing", "speaker", 1)
    # The late answer is ignored.
    assert engine.record_model_action(game.pk, 0, "select A", 0.5) is None
    turn.refresh_from_db()
    assert (turn.action, turn.action_probability) == ("", None)


def test_model_actions_are_stored_with_their_probability_once(clock):
    game, speaker, _ = start_game(clock(), "B-FFT", listener=False)
    engine.submit_utterance(game.pk, speaker.pk, "the fish")
    clock.advance(2)
    engine.record_model_action(game.pk, 0, "select A J", 0.25)
    assert engine.record_model_action(game.pk, 0, "select B", 0.5) is None
    turn = game.turns.get(index=0)
    assert (turn.action, turn.action_probability, turn.selection_after, turn.listener_seconds) == (
        "select A J",
        0.25,
        ["page1-9", "page1-0"],
        2.0,
    )
    engine.submit_utterance(game.pk, speaker.pk, "not that one")
    engine.record_model_action(game.pk, 1, "select A", 0.5)  # A is already selected
    turn = game.turns.get(index=1)
    assert (turn.action, turn.action_reason, turn.action_probability) == (
        "",
        "model_invalid_action",
        None,
    )
    assert game.turns.count() == 3


def test_bad_messages_are_refused_and_change_nothing(clock):
    game, speaker, listener = start_game(clock())
    stranger = helpers.worker("stranger")
    refusals = [
        (engine.submit_utterance, listener.pk, ("hi",), "wrong_role"),
        (engine.submit_utterance, stranger.pk, ("hi",), "forbidden"),
        (engine.submit_utterance, None, ("hi",), "forbidden"),
        (engine.toggle, listener.pk, ("page1-0",), "not_your_turn"),
        (engine.submit_selection, listener.pk, (None,), "not_your_turn"),
        (engine.submit_utterance, speaker.pk, ("x" * 301,), "too_long"),
        (engine.submit_utterance, speaker.pk, ("   ",), "empty_utterance"),
        (engine.submit_utterance, speaker.pk, ({"a": 1},), "bad_message"),
    ]
    for fn, worker_id, args, code in refusals:
        with pytest.raises(PlayError) as error:
            fn(game.pk, worker_id, *args)
        assert error.value.code == code, fn
    engine.submit_utterance(game.pk, speaker.pk, "x" * 300)
    for fn, worker_id, args, code in [
        (engine.toggle, listener.pk, ("page7-7",), "not_in_context"),
        (engine.toggle, listener.pk, (["page1-0"],), "not_in_context"),
        (engine.submit_selection, listener.pk, (["page1-0", "page1-0"],), "bad_message"),
        (engine.submit_selection, listener.pk, ("page1-0",), "bad_message"),
        (engine.submit_selection, speaker.pk, ([],), "wrong_role"),
        (engine.submit_utterance, speaker.pk, ("again",), "not_your_turn"),
    ]:
        with pytest.raises(PlayError) as error:
            fn(game.pk, worker_id, *args)
        assert error.value.code == code
    with pytest.raises(PlayError) as error:
        engine.submit_utterance(10**9, speaker.pk, "hi")
    assert error.value.code == "no_game"
    game.refresh_from_db()
    assert (game.phase, game.turn_index, game.listener_draft, game.version) == (
        "listener",
        0,
        [],
        2,
    )
    assert list(game.events.values_list("kind", flat=True)) == ["start", "utterance"]


def test_a_message_after_the_deadline_applies_the_timeout_first(clock):
    game, speaker, listener = start_game(clock())
    clock.advance(40)
    result = engine.submit_utterance(game.pk, speaker.pk, "too late")
    assert isinstance(result, engine.Refused) and result.error.code == "game_over"
    game.refresh_from_db()
    assert (game.outcome, game.turns.get().utterance) == ("idle", "")
    assert GameEvent.objects.filter(game=game, kind="timeout").count() == 1
    assert not GameEarning.objects.filter(worker=speaker).exists()


def test_play_sweep_ends_only_the_games_past_their_deadline(clock):
    from io import StringIO

    from django.core.management import call_command

    game, _, _ = start_game(clock())
    clock.advance(32)
    output = StringIO()
    call_command("play_sweep", stdout=output)
    assert output.getvalue().strip() == "1 overdue games handled"
    game.refresh_from_db()
    assert (game.outcome, game.end_reason) == ("idle", "speaker idled")
    output = StringIO()
    call_command("play_sweep", stdout=output)
    assert output.getvalue().strip() == "0 overdue games handled"
