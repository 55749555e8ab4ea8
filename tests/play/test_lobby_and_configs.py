"""Pairing, roles, waiting pay and seeded configs."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.db import transaction

from games.live import configs, lobby
from games.live.selectors import worker_game_earnings
from games.models import Game, GameConfig, LobbyEntry, RoundSlot, Study, Tangram
from tests.factories import start_live_game

from . import helpers

pytestmark = pytest.mark.django_db


class Always(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_workers_are_paired_in_arrival_order_and_never_with_themselves(clock):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "HH")
    a, b, c = (helpers.worker(n) for n in "abc")
    lobby.arrive(round_, a)
    lobby.arrive(round_, a)
    assert lobby.try_pair(round_.pk) == []
    assert LobbyEntry.objects.filter(worker=a).count() == 1
    clock.advance(1)
    lobby.arrive(round_, b)
    clock.advance(1)
    lobby.arrive(round_, c)
    (pairing,) = lobby.try_pair(round_.pk, rng=Always(0.0))
    game = Game.objects.get(pk=pairing.game_id)
    assert (game.speaker, game.listener, game.status, game.phase) == (a, b, "playing", "speaker")
    assert LobbyEntry.objects.get(worker=c).status == "waiting"
    # One game at a time: a playing worker who comes back to a lobby is not paired again.
    lobby.arrive(round_, a)
    assert lobby.try_pair(round_.pk) == []
    assert LobbyEntry.objects.filter(worker=a, status="closed").count() == 1
    assert lobby.active_game(a) == game


def test_roles_follow_the_study_rule(clock):
    helpers.tangrams()
    study = helpers.study(role_rule=Study.RoleRule.EXPERIENCED_SPEAKS)
    round_ = helpers.round_with(study, "HH")
    novice, expert = helpers.worker("novice"), helpers.worker("expert")
    earlier = helpers.round_with(study, "HH", index=1)
    with transaction.atomic():
        Game.objects.create(
            study=study,
            round=earlier,
            system=earlier.systems.get(),
            external_id="old",
            config=helpers.config(study),
            listener=expert,
            status="ended",
            outcome="idle",
        )
    lobby.arrive(round_, novice)
    clock.advance(1)
    lobby.arrive(round_, expert)
    (pairing,) = lobby.try_pair(round_.pk, rng=Always(0.0))
    game = Game.objects.get(pk=pairing.game_id)
    assert (game.speaker, game.listener) == (expert, novice)
    assert lobby.assign_roles(Study(), 1, 2, Always(0.9)) == (2, 1)
    assert lobby.assign_roles(Study(), 1, 2, Always(0.1)) == (1, 2)


def test_a_model_round_starts_a_game_for_each_arriving_speaker(clock):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "B-FFT")
    lobby.arrive(round_, helpers.worker("solo"))
    (pairing,) = lobby.try_pair(round_.pk)
    game = Game.objects.get(pk=pairing.game_id)
    assert (game.system.name, game.listener, game.speaker.pk) == (
        "B-FFT",
        None,
        pairing.worker_ids[0],
    )


def test_only_present_workers_are_paired(clock):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "HH")
    lobby.arrive(round_, helpers.worker("gone"))
    clock.advance(21)
    lobby.arrive(round_, helpers.worker("here"))
    assert lobby.try_pair(round_.pk) == []
    lobby.arrive(round_, helpers.worker("also here"))
    (pairing,) = lobby.try_pair(round_.pk)
    names = {helpers.worker("here").pk, helpers.worker("also here").pk}
    assert set(pairing.worker_ids) == names


def test_waiting_is_recorded_and_paid_at_the_study_rate(clock):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(lobby_wait_seconds=300), "HH")
    patient, hasty, paired = helpers.worker("p"), helpers.worker("h"), helpers.worker("q")
    lobby.arrive(round_, patient)
    clock.advance(301)
    entry = lobby.leave(round_.pk, patient.pk)
    # 301 s at 0.20 per minute = 1.0033 -> 1.00
    assert (entry.status, entry.waited_seconds) == ("left", 301.0)
    assert worker_game_earnings(patient) == Decimal("1.00")
    lobby.arrive(round_, hasty)
    clock.advance(100)
    assert lobby.leave(round_.pk, hasty.pk).status == "closed"
    assert worker_game_earnings(hasty) == Decimal("0.00")
    with pytest.raises(lobby.LobbyError):
        lobby.leave(round_.pk, hasty.pk)
    lobby.arrive(round_, paired)
    clock.advance(90)
    lobby.heartbeat(round_.pk, paired.pk)
    lobby.arrive(round_, hasty)
    lobby.try_pair(round_.pk)
    assert LobbyEntry.objects.get(worker=paired, status="paired").waited_seconds == 90.0
    assert worker_game_earnings(paired) == Decimal("0.30")


def test_configs_are_seeded_from_the_main_split(db):
    names = helpers.tangrams(14)
    Tangram.objects.create(name="page0-dev", split="dev")
    study = helpers.study(min_targets=3, max_targets=5)
    pool = configs.main_split_pool()
    assert pool == sorted(names)
    drawn = [configs.draw_config(study, pool, seed) for seed in range(40)]
    assert drawn[7] == configs.draw_config(study, pool, 7)
    for config in drawn:
        assert len(set(config["speaker_order"])) == 10
        assert sorted(config["listener_order"]) == sorted(config["speaker_order"])
        assert config["listener_order"] != config["speaker_order"]
        assert 3 <= len(config["targets"]) <= 5
        assert set(config["targets"]) <= set(config["speaker_order"])
    assert {len(c["targets"]) for c in drawn} == {3, 4, 5}
    saved = configs.generate_configs(study, 3, seed=11)
    assert [c.seed for c in saved] == [configs.derive_seed(11, i) for i in range(3)]
    assert (
        saved[1].targets == configs.draw_config(study, pool, configs.derive_seed(11, 1))["targets"]
    )
    with pytest.raises(configs.ConfigError, match="needs 10 tangrams"):
        configs.draw_config(study, pool[:9], 1)


def test_round_slots_compare_systems_on_the_same_configs(db, clock):
    helpers.tangrams()
    study = helpers.study()
    shared = helpers.round_with(study, "B-FFT", "CONTROL", "HH", config_seed=5)
    slots = configs.prepare_round(shared, 2)
    assert [s.block for s in slots] == [0, 0, 0, 1, 1, 1]
    for block in (0, 1):
        block_slots = [s for s in slots if s.block == block]
        assert {s.system.name for s in block_slots} == {"B-FFT", "CONTROL", "HH"}
        assert len({s.config_id for s in block_slots}) == 1
    again = helpers.round_with(helpers.study("copy"), "B-FFT", "CONTROL", "HH", config_seed=5)
    copies = configs.prepare_round(again, 2)
    assert [s.system.name for s in copies] == [s.system.name for s in slots]
    assert [s.config.targets for s in copies] == [s.config.targets for s in slots]
    separate = helpers.round_with(study, "B-FFT", "CONTROL", index=3, reuse_configs=False)
    assert len({s.config_id for s in configs.prepare_round(separate, 1)}) == 2
    # A slot whose game ended idle is played again; other slots are used once.
    first = configs.next_free_slot(shared)
    game = start_live_game(
        first.system, first.config, helpers.worker("w"), now=clock(), external_id="x", slot=first
    )
    assert configs.next_free_slot(shared).position == 1
    Game.objects.filter(pk=game.pk).update(status="ended", outcome="idle")
    assert configs.next_free_slot(shared).position == 0
    assert RoundSlot.objects.filter(round=shared).count() == 6
    assert GameConfig.objects.filter(study=study).count() == 4
