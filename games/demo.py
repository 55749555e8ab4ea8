"""The zero-setup demo: users, a tangram library and a study of synthetic but plausible games.

Games are simulated, seeded and reproducible: a speaker asks for the targets one by one ("pick
the bird"), acknowledges correct picks ("yes. now ..."), complains about wrong ones ("no, the
other one"); a listener of a given skill carries out the request or makes a plausible mistake.
Better systems in later rounds get more skill, so the demo shows the paper's upward trend. The
games go in through ``games.importing.import_game_records`` like any other records, so running
the demo again finds them identical and writes nothing.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from games.actions import action_between
from games.importing import ImportResult, import_game_records
from games.models import Study, System, Tangram
from games.records import GameRecord, TurnRecord
from games.roles import ADMINS_GROUP, RESEARCHERS_GROUP
from games.rounds import SystemSpec, ensure_round, ensure_system
from games.tangrams import (
    GENERATED,
    LoadResult,
    find_splits_file,
    generate_demo_tangrams,
    import_tangram_directory,
)

DEMO_STUDY = "Demo study"
DEMO_PASSWORD = "respect-demo"
DEMO_START = datetime(2024, 9, 2, 14, 0, tzinfo=UTC)

NOUNS = (
    "bird", "swan", "dancer", "rabbit", "boat", "house with a chimney", "running man", "cat",
    "fox", "candle", "arrow pointing up", "kneeling person", "duck", "whale", "rocket", "teapot",
    "horse", "camel", "dog sitting", "giraffe", "ice skater", "bowing man", "crown", "fish",
    "mountain", "tree", "bell", "chair", "lamp", "airplane", "sailboat", "castle", "turtle", "owl",
    "penguin", "kangaroo", "monk", "ballerina", "angel", "key", "hammer", "anchor", "butterfly",
    "crab", "seal", "bear", "elephant", "deer", "letter z", "lightning bolt", "staircase", "hat",
    "goose", "snake", "man with a hat", "person waving", "diamond", "bridge", "hook", "ghost",
)  # fmt: skip
ADJECTIVES = ("", "", "", "tall ", "fat ", "little ", "upside down ", "pointy ", "sitting ")


@dataclass(frozen=True)
class DemoSystem:
    round_index: int
    name: str
    games: int
    skill: float
    policy_checkpoint: str = ""
    description: str = ""
    idle: str = ""


DEMO_SYSTEMS: tuple[DemoSystem, ...] = (
    DemoSystem(0, "HH", 5, 0.8, "", "Human listeners (reference)."),
    DemoSystem(0, "CONTROL", 7, 0.27, "random", "The initial policy π_θ0.", "listener idled"),
    DemoSystem(1, "B-FFT", 7, 0.36, "random", "Binary feedback, filtered fine-tuning."),
    DemoSystem(1, "T-RL", 6, 0.33, "random", "Ternary feedback, REINFORCE."),
    DemoSystem(2, "B-FFT", 7, 0.46, "random", "Binary feedback, filtered fine-tuning."),
    DemoSystem(2, "B-KTO", 5, 0.38, "random", "Binary feedback, KTO.", "speaker idled"),
    DemoSystem(2, "CONTROL", 4, 0.27, "random", "The initial policy π_θ0, redeployed."),
)


@dataclass
class DemoResult:
    users_created: list[str] = field(default_factory=list)
    tangrams: LoadResult | None = None
    imports: list[ImportResult] = field(default_factory=list)

    @property
    def games_created(self) -> int:
        return sum(r.created for r in self.imports)

    @property
    def games_present(self) -> int:
        return sum(r.skipped for r in self.imports)


def description_of(tangram: str) -> str:
    """What the demo speakers call a tangram (stable across runs and processes)."""
    digest = hashlib.sha256(tangram.encode()).digest()
    return ADJECTIVES[digest[0] % len(ADJECTIVES)] + NOUNS[digest[1] % len(NOUNS)]


def _request(rng: random.Random, names: Sequence[str], acknowledge: str) -> str:
    things = " and the ".join(description_of(n) for n in names)
    verb = rng.choice(("pick the", "click the", "select the", "the", "now the"))
    return f"{acknowledge}{verb} {things}".strip()


def simulate_game(
    rng: random.Random,
    game_id: str,
    pool: Sequence[str],
    *,
    skill: float,
    is_model: bool,
    turn_limit: int,
    started: datetime,
    speaker: str,
    listener: str | None,
    idle: str = "",
) -> GameRecord:
    """One game played by a simulated speaker and a listener who is right with ``skill``."""
    context = rng.sample(list(pool), 10)
    targets = context[: rng.randint(3, 5)]
    speaker_order = context[:]
    rng.shuffle(speaker_order)
    listener_order = context[:]
    rng.shuffle(listener_order)
    to_ask = targets[:]
    rng.shuffle(to_ask)
    idle_at = rng.randint(1, 3) if idle else None

    selection: set[str] = set()
    turns: list[TurnRecord] = []
    clock = started
    asked: list[str] = []
    last_right = None
    outcome, end_reason = "unsuccessful", "turn limit reached"
    for index in range(turn_limit):
        if idle == "speaker idled" and index == idle_at:
            outcome, end_reason = "idle", idle
            break
        wrong = selection - set(targets)
        if wrong:
            utterance, reselect = rng.choice(
                (
                    ("no, the other one", True),
                    (f"no, not that one. the {description_of(asked[0])}", True),
                    ("undo that, deselect it", False),
                    (f"wrong one. deselect it and pick the {description_of(asked[0])}", True),
                )
            )
            intended = (selection - wrong) | (set(asked) if reselect else set())
        else:
            remaining = [t for t in to_ask if t not in selection]
            asked = remaining[: 2 if len(remaining) > 1 and rng.random() < 0.15 else 1]
            ack = (
                ""
                if last_right is None
                else rng.choice(("yes. now ", "good, ", "ok. ", "correct. "))
            )
            utterance = _request(rng, asked, ack)
            intended = selection | set(asked)
        speaker_seconds = round(rng.uniform(4, 22), 3)
        utterance_at = clock + timedelta(seconds=speaker_seconds)
        if idle == "listener idled" and index == idle_at:
            turns.append(
                TurnRecord(
                    utterance=utterance,
                    selection_before=tuple(selection),
                    selection_after=None,
                    action_reason="listener_idled",
                    speaker_seconds=speaker_seconds,
                    started_at=clock,
                    utterance_at=utterance_at,
                )
            )
            outcome, end_reason = "idle", idle
            break
        right = rng.random() < skill
        if right:
            after = set(intended)
        else:
            others = [t for t in context if t not in targets and t not in selection]
            after = set(selection - wrong) | {rng.choice(others)} if others else set(selection)
        listener_seconds = round(rng.uniform(0.4, 2.5) if is_model else rng.uniform(3, 30), 3)
        submitted_at = utterance_at + timedelta(seconds=listener_seconds)
        probability = None
        if is_model:
            probability = round(rng.uniform(0.35, 0.97) if right else rng.uniform(0.05, 0.6), 4)
        turns.append(
            TurnRecord(
                utterance=utterance,
                selection_before=tuple(selection),
                selection_after=tuple(after),
                action=action_between(listener_order, selection, after),
                action_probability=probability,
                speaker_seconds=speaker_seconds,
                listener_seconds=listener_seconds,
                started_at=clock,
                utterance_at=utterance_at,
                submitted_at=submitted_at,
            )
        )
        clock = submitted_at + timedelta(seconds=2)
        selection = after
        last_right = right
        if selection == set(targets):
            outcome, end_reason = "successful", "successful"
            break
    return GameRecord(
        game_id=game_id,
        speaker_order=tuple(speaker_order),
        listener_order=tuple(listener_order),
        targets=tuple(targets),
        outcome=outcome,
        end_reason=end_reason,
        turns=tuple(turns),
        speaker=speaker,
        listener=listener,
        created_at=started,
        ended_at=clock,
        metadata={"generated_by": "load_demo"},
    )


def demo_description(system: DemoSystem) -> str:
    """A demo system's description, saying when its listener is a random stand-in."""
    if system.policy_checkpoint.startswith("random"):
        return f"{system.description} Demo listener: a random policy, not a trained model."
    return system.description


def demo_records(system: DemoSystem, pool: Sequence[str], seed: int, turn_limit: int):
    """The games of one demo system (deterministic in ``seed``)."""
    records = []
    for number in range(1, system.games + 1):
        rng = random.Random(f"{seed}:{system.round_index}:{system.name}:{number}")
        started = DEMO_START + timedelta(days=7 * system.round_index, minutes=9 * number)
        records.append(
            simulate_game(
                rng,
                f"demo-r{system.round_index}-{system.name}-{number:02d}",
                pool,
                skill=system.skill,
                is_model=system.name != System.HUMAN,
                turn_limit=turn_limit,
                started=started,
                speaker=f"demo-speaker-{rng.randint(1, 12):02d}",
                listener=(
                    f"demo-listener-{rng.randint(1, 6):02d}"
                    if system.name == System.HUMAN
                    else None
                ),
                idle=system.idle if number == 3 else "",
            )
        )
    return records


def ensure_demo_users() -> list[str]:
    """``researcher`` (group researchers) and ``admin`` (superuser, group admins); passwords are
    set only when a user is created, so a changed demo password survives a reload.

    The known ``DEMO_PASSWORD`` is given only with DEBUG on: with DEBUG off new demo users get no
    usable password (set one with ``manage.py changepassword``)."""
    password = DEMO_PASSWORD if settings.DEBUG else None
    created = []
    for username, group_name, superuser in (
        ("researcher", RESEARCHERS_GROUP, False),
        ("admin", ADMINS_GROUP, True),
    ):
        user = User.objects.filter(username=username).first()
        if user is None:
            make = User.objects.create_superuser if superuser else User.objects.create_user
            user = make(username, f"{username}@example.org", password)
            created.append(username)
        user.groups.add(Group.objects.get_or_create(name=group_name)[0])
    return created


def demo_tangram_pool(tangram_count: int, seed: int) -> tuple[list[str], LoadResult]:
    """Tangram ids for demo games: KILOGRAM from ``TANGRAM_DIR`` if set, else generated ones."""
    if settings.TANGRAM_DIR:
        directory = Path(settings.TANGRAM_DIR)
        loaded = import_tangram_directory(directory, find_splits_file(directory))
        pool = Tangram.objects.exclude(source=GENERATED)
    else:
        loaded = generate_demo_tangrams(tangram_count, seed)
        pool = Tangram.objects.filter(name__in=loaded.created + loaded.updated + loaded.unchanged)
    names = list(
        pool.filter(split__in=[Tangram.Split.TRAIN, Tangram.Split.TEST])
        .order_by("name")
        .values_list("name", flat=True)
    )
    return names, loaded


def load_demo(*, seed: int = 0, tangram_count: int = 60) -> DemoResult:
    """Create whatever of the demo is missing; safe to run any number of times."""
    result = DemoResult()
    with transaction.atomic():
        result.users_created = ensure_demo_users()
        pool, result.tangrams = demo_tangram_pool(tangram_count, seed)
        if len(pool) < 10:
            raise ValueError(f"the demo needs at least 10 train/test tangrams, found {len(pool)}")
        study, _ = Study.objects.get_or_create(
            name=DEMO_STUDY,
            defaults={
                "description": "Synthetic games made by load_demo: three rounds of human-bot "
                "deployments with human-human references. Utterances and players are invented.",
            },
        )
        for system in DEMO_SYSTEMS:
            # Demo rounds are created with an open lobby (the local entry plays them); a lobby a
            # researcher closed stays closed when the demo is loaded again.
            round_ = ensure_round(study, system.round_index, lobby_open=True)
            ensure_system(
                round_,
                SystemSpec(
                    name=system.name,
                    policy_checkpoint=system.policy_checkpoint,
                    decoder="" if system.name == System.HUMAN else "lexicon",
                    description=demo_description(system),
                ),
            )
            result.imports.append(
                import_game_records(
                    demo_records(system, pool, seed, study.turn_limit),
                    study=study,
                    round_index=system.round_index,
                    system_name=system.name,
                )
            )
    return result
