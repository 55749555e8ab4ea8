"""Batches and the work queue: sampling, redundancy, no repeats, time-outs, gold, concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import zip_longest

import pytest
from django.db import connection
from django.utils import timezone

from annotation import creation, gold
from annotation.models import Assignment, BatchItem
from annotation.selectors import batch_progress, gold_accuracy
from annotation.survey import submit_answer, submit_game
from annotation.validation import InputError
from annotation.work_queue import claim_next

from .conftest import add_games, answer_turns, arrive, make_batch

CODE = {"prolific_completion_code": "C0DE42"}


def complete(
    session, assignment, actions=("select A", "select B", "select C"), satisfaction=("yes", "yes")
):
    answer_turns(session, assignment, zip_longest(actions, satisfaction))
    submit_game(session, {"assignment": assignment.pk})


@pytest.mark.django_db
def test_batch_samples_games_and_marks_the_redundant_fraction(system):
    add_games(system, 20)
    batch = creation.create_batch(
        study=system.round.study,
        round_index=0,
        system_name="B-FFT",
        name="b",
        games=20,
        seed=7,
        task_options=CODE,
    )
    items = list(batch.items.all())
    assert len(items) == 20
    # 5% of 20 games is one game, wanted 3 times
    assert sorted(i.required_annotations for i in items) == [1] * 19 + [3]
    assert batch.task.kind == "annotation"
    again = creation.create_batch(
        study=system.round.study,
        round_index=0,
        system_name="B-FFT",
        name="b2",
        games=20,
        seed=7,
        task_options=CODE,
    )
    assert [i.game_id for i in again.items.all()] == [i.game_id for i in items]
    assert [i.required_annotations for i in again.items.all()] == [
        i.required_annotations for i in items
    ]


@pytest.mark.django_db
def test_batch_by_turns_stops_once_the_turn_count_is_reached(system):
    add_games(system, 5)
    batch = creation.create_batch(
        study=system.round.study,
        round_index=0,
        system_name="B-FFT",
        name="b",
        turns=7,
        redundancy_fraction=0,
        task_options=CODE,
    )
    assert batch.items.count() == 3  # 3 turns per game: 3 + 3 < 7 <= 9
    assert batch_progress(batch)["turns"] == 9


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"games": 6}, "games"),
        ({"turns": 100}, "turns"),
        ({"games": 1, "turns": 1}, "games"),
        ({"games": 1, "system_name": "T-RL"}, "system"),
        ({"games": 1, "round_index": 4}, "round"),
        ({"games": 1, "name": "<b>x</b>"}, "name"),
    ],
)
def test_batch_refusals_name_the_field_and_create_nothing(system, options, field):
    add_games(system, 5)
    arguments = {
        "study": system.round.study,
        "round_index": 0,
        "system_name": "B-FFT",
        "name": "b",
        "task_options": CODE,
    } | options
    with pytest.raises(InputError) as caught:
        creation.create_batch(**arguments)
    assert caught.value.field == field
    assert not BatchItem.objects.exists()


@pytest.mark.django_db
def test_a_redundant_game_goes_to_distinct_workers_and_stops_when_complete(system):
    batch = make_batch(system, 1, redundancy_fraction=1.0, redundancy_count=3)
    sessions = [arrive(batch.task, f"W{n}") for n in range(4)]
    claims = [claim_next(s) for s in sessions[:3]]
    assert len({c.worker_id for c in claims}) == 3
    assert len({c.item_id for c in claims}) == 1
    assert claim_next(sessions[3]) is None  # three slots held
    progress = batch_progress(batch)
    assert (progress["turns"], progress["assignments_in_progress"]) == (3, 3)
    complete(sessions[0], claims[0])
    progress = batch_progress(batch)
    assert (progress["annotations_submitted"], progress["assignments_in_progress"]) == (1, 2)
    assert (progress["games_complete"], progress["workers"]) == (0, 3)
    for session, assignment in zip(sessions[1:3], claims[1:], strict=True):
        complete(session, assignment)
    assert claim_next(sessions[3]) is None  # three annotations stored
    progress = batch_progress(batch)
    assert (progress["games_complete"], progress["annotations_submitted"]) == (1, 3)
    assert (progress["annotations_wanted"], progress["assignments_in_progress"]) == (3, 0)
    # the same worker never gets a second copy
    assert claim_next(sessions[0]) is None


@pytest.mark.django_db
def test_a_worker_never_sees_a_game_twice_even_across_batches(system):
    first = make_batch(system, 2)
    second = creation.create_batch(
        study=system.round.study,
        round_index=0,
        system_name="B-FFT",
        name="again",
        games=2,
        redundancy_fraction=0,
        task_options=CODE,
    )
    session = arrive(first.task, "W1")
    seen = set()
    while (assignment := claim_next(session)) is not None:
        seen.add(assignment.item.game_id)
        complete(session, assignment)
    assert len(seen) == 2
    later = arrive(second.task, "W1")
    assert claim_next(later) is None


@pytest.mark.django_db
def test_an_abandoned_game_is_released_after_the_time_out(system):
    batch = make_batch(system, 1, timeout_minutes=30)
    gone, other = arrive(batch.task, "GONE"), arrive(batch.task, "OTHER")
    abandoned = claim_next(gone)
    assert claim_next(other) is None
    Assignment.objects.filter(pk=abandoned.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=31)
    )
    taken = claim_next(other)
    assert taken is not None and taken.item_id == abandoned.item_id
    with pytest.raises(InputError) as caught:
        submit_answer(gone, {"assignment": abandoned.pk, "turn": 0, "phase": 1, "action": ""})
    assert caught.value.status == 409 and "released" in caught.value.message
    assert claim_next(gone) is None  # the only game is taken, and never handed out twice
    abandoned.refresh_from_db()
    assert abandoned.status == "released"


@pytest.mark.django_db
def test_an_idle_worker_keeps_the_game_if_nobody_needed_the_slot(system):
    batch = make_batch(system, 2, timeout_minutes=30)
    session = arrive(batch.task, "SLOW")
    first = claim_next(session)
    Assignment.objects.filter(pk=first.pk).update(
        last_activity_at=timezone.now() - timedelta(hours=2)
    )
    assert claim_next(session).pk == first.pk


@pytest.mark.django_db
def test_gold_games_are_mixed_in_and_accuracy_is_measured(system):
    batch = make_batch(system, 3, gold_interval=2)
    gold_game = add_games(system, 1, prefix="gold")[0]
    gold.add_gold_game(
        batch,
        gold_game,
        [
            {"turn": 0, "action": "select A", "satisfaction": "yes"},
            {"turn": 1, "action": "select B", "satisfaction": "no"},
            {"turn": 2, "action": "select C"},
        ],
    )
    session = arrive(batch.task, "W1")
    first = claim_next(session)
    assert not first.item.is_gold
    complete(session, first)
    second = claim_next(session)
    assert second.item.is_gold
    # right action twice, wrong once; satisfaction right once of two
    complete(
        session, second, actions=("select A", "select D", "select C"), satisfaction=("yes", "yes")
    )
    [row] = gold_accuracy(batch)
    assert (row.turns, row.action_correct, row.satisfaction_turns, row.satisfaction_correct) == (
        3,
        2,
        2,
        1,
    )
    assert row.action_accuracy == pytest.approx(2 / 3)
    assert row.satisfaction_accuracy == 0.5


@pytest.mark.django_db
def test_gold_answers_are_validated(system):
    batch = make_batch(system, 1)
    game = add_games(system, 1, prefix="gold")[0]
    with pytest.raises(InputError) as caught:
        gold.add_gold_game(
            batch,
            game,
            [
                {"turn": 0, "action": "select K", "satisfaction": "yes"},
                {"turn": 1, "action": "", "satisfaction": "yes"},
                {"turn": 2, "action": ""},
            ],
        )
    assert caught.value.field == "answers[turn 0].action"
    with pytest.raises(InputError) as caught:
        gold.add_gold_game(batch, game, [{"turn": 0, "action": "select A", "satisfaction": "yes"}])
    assert caught.value.field == "answers" and "[1, 2]" in caught.value.message
    assert not BatchItem.objects.filter(is_gold=True).exists()


def _race(sessions):
    """Every session asks for work at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(sessions))
    results, errors = [None] * len(sessions), []

    def ask(position, session):
        try:
            barrier.wait()
            results[position] = claim_next(session)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(n, s)) for n, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql("threads claim slots at once, which locks SQLite's tables")
def test_two_workers_asking_at_once_never_get_the_same_slot(system):
    batch = make_batch(system, 1)
    sessions = [arrive(batch.task, "R1"), arrive(batch.task, "R2")]
    for _ in range(5):
        Assignment.objects.all().delete()
        results = _race(sessions)
        assert sorted(r is None for r in results) == [False, True]
    assert Assignment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql("threads claim slots at once, which locks SQLite's tables")
def test_many_workers_at_once_fill_every_slot_exactly(system):
    batch = make_batch(system, 4, redundancy_fraction=0.5, redundancy_count=3)
    sessions = [arrive(batch.task, f"M{n}") for n in range(10)]
    results = _race(sessions)
    slots = sum(i.required_annotations for i in batch.items.all())  # 3 + 3 + 1 + 1
    assert slots == 8
    assert sum(r is not None for r in results) == 8
    for item in batch.items.all():
        assert item.assignments.count() == item.required_annotations


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql("threads claim slots at once, which locks SQLite's tables")
def test_one_worker_on_two_devices_claims_one_game(system):
    batch = make_batch(system, 3)
    session = arrive(batch.task, "TWICE")
    results = _race([session, session])
    assert results[0].pk == results[1].pk
    assert Assignment.objects.count() == 1
