"""Game configs and round slots, generated from seeds so a study can be regenerated exactly.

A config takes ``context_size`` tangrams of the main split (train + test), ``min_targets`` to
``max_targets`` of them as targets, and two different display orders. Round slots come in blocks:
with ``Round.reuse_configs`` one config per block is played by every system of the round, the
systems in a seeded random order, so arriving speakers are spread at random over the systems and
the systems are compared on the same games.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from config.errors import ApplicationError
from games.models import Game, GameConfig, Round, RoundSlot, Study, System, Tangram

MAIN_SPLITS = (Tangram.Split.TRAIN, Tangram.Split.TEST)


class ConfigError(ApplicationError):
    """Configs cannot be generated as asked (too few tangrams, no systems)."""


def derive_seed(*parts: object) -> int:
    """A stable 62-bit seed from any parts (the same parts give the same seed on any machine)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()
    return int(digest[:15], 16)


def main_split_pool() -> list[str]:
    return sorted(Tangram.objects.filter(split__in=MAIN_SPLITS).values_list("name", flat=True))


def draw_config(study: Study, pool: list[str], seed: int) -> dict[str, list[str]]:
    """The orders and targets of one config (pure: the same pool and seed give the same config)."""
    size = study.context_size
    if len(pool) < size:
        raise ConfigError(
            f"study {study.name!r} needs {size} tangrams of the main split (train+test); "
            f"{len(pool)} are loaded"
        )
    rng = random.Random(seed)
    speaker_order = rng.sample(sorted(pool), size)
    n_targets = rng.randint(study.min_targets, study.max_targets)
    targets = rng.sample(speaker_order, n_targets)
    listener_order = list(speaker_order)
    for _ in range(100):
        rng.shuffle(listener_order)
        if listener_order != speaker_order:
            break
    return {
        "speaker_order": speaker_order,
        "listener_order": listener_order,
        "targets": [t for t in speaker_order if t in set(targets)],
    }


def generate_configs(study: Study, count: int, seed: int) -> list[GameConfig]:
    """``count`` configs for ``study``; config i is drawn with seed ``derive_seed(seed, i)``."""
    if count < 1:
        raise ConfigError("count must be at least 1")
    pool = main_split_pool()
    drawn = [
        (derive_seed(seed, i), draw_config(study, pool, derive_seed(seed, i))) for i in range(count)
    ]
    with transaction.atomic():
        return [GameConfig.objects.create(study=study, seed=s, **fields) for s, fields in drawn]


def _round_systems(round_: Round) -> list[System]:
    systems = sorted(round_.systems.all(), key=lambda s: s.name)
    if not systems:
        raise ConfigError(f"{round_} has no systems: add HH or a model system first")
    return systems


def _block_order(round_: Round, systems: list[System], block: int) -> list[System]:
    """The systems of ``block`` in its seeded order (``systems`` sorted by name)."""
    ordered = list(systems)
    random.Random(derive_seed(round_.config_seed, "order", block)).shuffle(ordered)
    return ordered


@dataclass
class _Blocks:
    """Appends blocks of slots to a round; what the blocks share (the tangram pool, the round's
    systems, where the next block starts) is read once, so a pairing run that adds a block per
    game costs two inserts a block. The caller holds the round's row lock."""

    round: Round
    pool: list[str]
    systems: list[System]
    block: int
    position: int

    @classmethod
    def of(cls, round_: Round) -> _Blocks:
        last = round_.slots.aggregate(block=Max("block"), position=Max("position"))
        return cls(
            round_,
            main_split_pool(),
            _round_systems(round_),
            0 if last["block"] is None else last["block"] + 1,
            0 if last["position"] is None else last["position"] + 1,
        )

    def add(self) -> list[RoundSlot]:
        """Append the next block (one game per system, in the block's seeded order)."""
        round_, study, block = self.round, self.round.study, self.block
        systems = _block_order(round_, self.systems, block)
        if round_.reuse_configs:
            seeds = [derive_seed(round_.config_seed, "config", block)]
        else:
            seeds = [derive_seed(round_.config_seed, "config", block, s.name) for s in systems]
        configs = GameConfig.objects.bulk_create(
            [
                GameConfig(study=study, seed=seed, **draw_config(study, self.pool, seed))
                for seed in seeds
            ]
        )
        slots = RoundSlot.objects.bulk_create(
            [
                RoundSlot(
                    round=round_,
                    position=self.position + offset,
                    block=block,
                    system=system,
                    config=configs[0] if round_.reuse_configs else configs[offset],
                )
                for offset, system in enumerate(systems)
            ]
        )
        self.block += 1
        self.position += len(slots)
        return slots


def add_block(round_: Round) -> list[RoundSlot]:
    """Append one block of slots (one game per system) to the round."""
    return _Blocks.of(round_).add()


def prepare_round(round_: Round, blocks: int) -> list[RoundSlot]:
    """Generate ``blocks`` blocks of slots ahead of play (the lobby adds more when they run out)."""
    with transaction.atomic():
        Round.objects.select_for_update().get(pk=round_.pk)
        maker = _Blocks.of(round_)
        slots: list[RoundSlot] = []
        for _ in range(blocks):
            slots.extend(maker.add())
        return slots


def _free_slots(round_: Round, system: System | None = None):
    taken = Game.objects.filter(slot=OuterRef("pk")).exclude(outcome=Game.Outcome.IDLE)
    slots = RoundSlot.objects.filter(round=round_).exclude(Exists(taken))
    if system is not None:
        slots = slots.filter(system=system)
    return slots.select_related("system", "config").order_by("position")


class FreeSlots:
    """The round's free slots for one pairing run: read once, then handed out in order
    (``first``, then ``take`` once a game is created on it), adding blocks when they run out.

    Gives the slots ``next_free_slot`` would give one call at a time, with one query per run
    instead of one per game: the caller holds the round's row lock for the whole run, so no
    other process takes a slot meanwhile, and no game of the run ends idle within it.
    """

    def __init__(self, round_: Round) -> None:
        self.round = round_
        self.free: list[RoundSlot] | None = None
        self.blocks: _Blocks | None = None

    def first(self, system: System | None = None) -> RoundSlot:
        if system is not None and system.round_id != self.round.pk:
            raise ConfigError(f"system {system.name!r} is not a system of {self.round}")
        if self.free is None:
            self.free = list(_free_slots(self.round))
        for slot in self.free:
            if system is None or slot.system_id == system.pk:
                return slot
        if self.blocks is None:
            self.blocks = _Blocks.of(self.round)
        self.free.extend(self.blocks.add())
        return self.first(system)

    def take(self, slot: RoundSlot) -> None:
        if self.free is not None:
            self.free.remove(slot)


def next_free_slot(round_: Round, system: System | None = None) -> RoundSlot:
    """The first slot (of ``system``, if given) with no game on it except games that ended idle
    (those are replayed); a new block is added when none is free.

    The caller holds the round's row lock.
    """
    if system is not None and system.round_id != round_.pk:
        raise ConfigError(f"system {system.name!r} is not a system of {round_}")
    slot = _free_slots(round_, system).first()
    if slot is None:
        add_block(round_)
        return next_free_slot(round_, system)
    return slot
