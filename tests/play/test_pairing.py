"""Who plays whom: people waiting for a person first, then the round's mix; the local entry's
choice of system is kept."""

from __future__ import annotations

import pytest

from games.live import lobby
from games.models import Game, LobbyEntry

from . import helpers

pytestmark = pytest.mark.django_db

# The seeded order of the systems in the first blocks of a round with CONTROL and HH:
# config_seed 0: [HH, CONTROL], [CONTROL, HH]; config_seed 2: [CONTROL, HH], [CONTROL, HH].
HH_FIRST, CONTROL_FIRST = 0, 2


def mixed_round(config_seed: int):
    helpers.tangrams()
    return helpers.round_with(helpers.study(), "HH", "CONTROL", config_seed=config_seed)


def system(round_, name: str):
    return round_.systems.get(name=name)


def games_by_system(pairings) -> list[tuple[str, int]]:
    return [(Game.objects.get(pk=p.game_id).system.name, len(p.worker_ids)) for p in pairings]


def test_two_people_who_choose_another_person_play_each_other_though_a_model_slot_is_next(clock):
    round_ = mixed_round(CONTROL_FIRST)
    alice, bob = helpers.worker("alice"), helpers.worker("bob")
    lobby.arrive(round_, alice, system(round_, "HH"))
    assert lobby.try_pair(round_.pk) == []
    clock.advance(2)
    lobby.arrive(round_, bob, system(round_, "HH"))
    (pairing,) = lobby.try_pair(round_.pk)
    game = Game.objects.get(pk=pairing.game_id)
    assert (game.system.name, {game.speaker, game.listener}, pairing.partner) == (
        "HH",
        {alice, bob},
        "human",
    )
    assert game.slot.position == 1  # the first HH slot; the CONTROL slot before it stays free


def test_a_person_who_chooses_a_model_plays_it_at_once_though_an_hh_slot_is_next(clock):
    round_ = mixed_round(HH_FIRST)
    carol = helpers.worker("carol")
    lobby.arrive(round_, carol, system(round_, "CONTROL"))
    (pairing,) = lobby.try_pair(round_.pk)
    game = Game.objects.get(pk=pairing.game_id)
    assert (game.system.name, game.speaker, game.listener, pairing.partner) == (
        "CONTROL",
        carol,
        None,
        "model",
    )
    assert game.slot.position == 1


def test_the_mix_pairs_a_waiting_person_with_the_next_person_before_giving_out_model_slots(clock):
    round_ = mixed_round(HH_FIRST)
    first, chooser, second, third = (helpers.worker(n) for n in ("w1", "w2", "w3", "w4"))
    lobby.arrive(round_, first)  # the next slot is HH: waits for another player
    assert lobby.try_pair(round_.pk) == []
    clock.advance(1)
    lobby.arrive(round_, chooser, system(round_, "CONTROL"))
    assert games_by_system(lobby.try_pair(round_.pk)) == [("CONTROL", 1)]
    assert LobbyEntry.objects.get(worker=first).status == "waiting"
    clock.advance(1)
    lobby.arrive(round_, second)
    (pairing,) = lobby.try_pair(round_.pk)
    assert set(pairing.worker_ids) == {first.pk, second.pk}
    assert games_by_system([pairing]) == [("HH", 2)]
    clock.advance(1)
    lobby.arrive(round_, third)  # block 0 is used up; block 1 starts with CONTROL
    (pairing,) = lobby.try_pair(round_.pk)
    assert (games_by_system([pairing]), pairing.partner) == ([("CONTROL", 1)], "model")
    positions = list(Game.objects.order_by("id").values_list("slot__position", flat=True))
    assert positions == [1, 0, 2]


def test_people_arriving_together_follow_the_mix_in_arrival_order(clock):
    round_ = mixed_round(CONTROL_FIRST)
    a, b, c = (helpers.worker(n) for n in "abc")
    for worker in (a, b, c):
        lobby.arrive(round_, worker)
        clock.advance(1)
    pairings = lobby.try_pair(round_.pk)
    assert games_by_system(pairings) == [("CONTROL", 1), ("HH", 2)]
    assert (pairings[0].worker_ids, set(pairings[1].worker_ids)) == ((a.pk,), {b.pk, c.pk})


def test_a_system_of_another_round_is_refused(clock):
    round_ = mixed_round(HH_FIRST)
    other = helpers.round_with(helpers.study("other"), "HH")
    with pytest.raises(lobby.LobbyError, match="is not a system of"):
        lobby.arrive(round_, helpers.worker("x"), other.systems.get())
    assert LobbyEntry.objects.count() == 0
