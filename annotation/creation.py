"""Writes of a researcher's set-up: annotation batches, the crowd tasks workers arrive at, and
qualification quizzes.

The pages and the API both validate their input with the serializers of
``annotation.api.researchers`` and
then call these functions, which check what needs the database (rounds, systems, eligible
games) and the rules that span fields (a Prolific task needs its completion code; MTurk pays in
dollars). Refusals raise ``InputError`` naming the field; every write is in one transaction.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from games.models import Game, Round, Study, System

from .models import AnnotationBatch, BatchItem, CrowdTask, Currency, Quiz, QuizQuestion
from .validation import InputError, free_text, platform_id


def eligible_games(round_: Round, system: System):
    """Ended games of a system in a round that have at least one answered turn."""
    return (
        Game.objects.filter(round=round_, system=system, status=Game.Status.ENDED)
        .annotate(n_turns=Count("turns", filter=Q(turns__selection_after__isnull=False)))
        .filter(n_turns__gt=0)
        .order_by("id")
    )


@transaction.atomic
def create_batch(
    *,
    study: Study,
    round_index: int,
    system_name: str,
    name: str,
    games: int | None = None,
    turns: int | None = None,
    redundancy_fraction: float = 0.05,
    redundancy_count: int = 3,
    gold_interval: int = 0,
    timeout_minutes: int = 30,
    seed: int = 0,
    pay_per_turn: Decimal = Decimal("0.06"),
    pay_per_error_turn: Decimal = Decimal("0.08"),
    pay_per_game: Decimal = Decimal("0.00"),
    pay_per_minute: Decimal = Decimal("0.00"),
    created_by=None,
    task_options: Mapping[str, object] | None = None,
) -> AnnotationBatch:
    """Sample games (by count or until a turn count is reached) into a new batch and its task.

    A fraction of the games (rounded, at least one when the fraction is positive) is wanted
    ``redundancy_count`` times; the sample and the redundant games are drawn with ``seed``.
    Amounts are in the task's currency (``task_options["currency"]``).
    """
    pay = {
        "pay_per_turn": pay_per_turn,
        "pay_per_error_turn": pay_per_error_turn,
        "pay_per_game": pay_per_game,
        "pay_per_minute": pay_per_minute,
    }
    for field, amount in pay.items():
        _check_amount(field, amount)
    name = free_text("name", name, max_chars=120)
    if not name:
        raise InputError("name", "is required")
    if (games is None) == (turns is None):
        raise InputError("games", "give either a number of games or a number of turns")
    if (games if games is not None else turns) < 1:
        raise InputError("games" if games is not None else "turns", "must be at least 1")
    if not 0 <= redundancy_fraction <= 1:
        raise InputError("redundancy_fraction", "must be between 0 and 1")
    if not 2 <= redundancy_count <= 20:
        raise InputError("redundancy_count", "must be between 2 and 20")
    round_ = Round.objects.filter(study=study, index=round_index).first()
    if round_ is None:
        raise InputError("round", f"study {study.name!r} has no round {round_index}")
    system = System.objects.filter(round=round_, name=system_name).first()
    if system is None:
        raise InputError("system", f"round {round_index} has no system {system_name!r}")

    pool = list(eligible_games(round_, system).values_list("id", "n_turns"))
    rng = random.Random(seed)
    rng.shuffle(pool)
    if games is not None:
        if games > len(pool):
            raise InputError("games", f"{games} requested but only {len(pool)} games are eligible")
        chosen = pool[:games]
    else:
        chosen, total = [], 0
        for game_id, n_turns in pool:
            if total >= turns:
                break
            chosen.append((game_id, n_turns))
            total += n_turns
        if total < turns:
            raise InputError("turns", f"{turns} requested but only {total} turns are eligible")

    n_redundant = round(redundancy_fraction * len(chosen))
    if redundancy_fraction > 0:
        n_redundant = max(1, n_redundant)
    redundant = {game_id for game_id, _ in rng.sample(chosen, n_redundant)}
    batch = AnnotationBatch.objects.create(
        name=name,
        study=study,
        round=round_,
        system=system,
        redundancy_fraction=redundancy_fraction,
        redundancy_count=redundancy_count,
        gold_interval=gold_interval,
        timeout_minutes=timeout_minutes,
        seed=seed,
        created_by=created_by,
        **pay,
    )
    BatchItem.objects.bulk_create(
        BatchItem(
            batch=batch,
            game_id=game_id,
            position=position,
            required_annotations=redundancy_count if game_id in redundant else 1,
        )
        for position, (game_id, _) in enumerate(chosen)
    )
    create_task(batch=batch, name=name, **dict(task_options or {}))
    return batch


def _check_amount(field: str, amount: object) -> None:
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise InputError(field, "must be an amount of money")
    if amount < 0:
        raise InputError(field, "must not be negative")
    if amount >= 10_000:
        raise InputError(field, "must be less than 10000")


def _check_platform(options: dict[str, object]) -> None:
    """Platform, currency and completion code of a task (``options`` gets the defaults)."""
    platform = options.setdefault("platform", CrowdTask.Platform.PROLIFIC)
    if platform not in CrowdTask.Platform.values:
        raise InputError("platform", f"must be one of {', '.join(CrowdTask.Platform.values)}")
    mturk = platform == CrowdTask.Platform.MTURK
    currency = options.setdefault("currency", Currency.USD if mturk else Currency.GBP)
    if currency not in Currency.values:
        raise InputError("currency", f"must be one of {', '.join(Currency.values)}")
    if mturk and currency != Currency.USD:
        raise InputError("currency", "MTurk pays in USD only")
    if platform == CrowdTask.Platform.PROLIFIC and not options.get("prolific_completion_code"):
        raise InputError(
            "prolific_completion_code",
            "is required for a Prolific task: workers are sent back to Prolific with it",
        )


def create_task(
    *, name: str, batch: AnnotationBatch | None = None, round_: Round | None = None, **options
) -> CrowdTask:
    """A crowd task for a batch or a game round; ``options`` are ``CrowdTask`` fields.

    A Prolific task (the default platform) is refused without a completion code."""
    allowed = {f.name for f in CrowdTask._meta.get_fields()} - {"id", "key", "batch", "round"}
    unknown = set(options) - allowed
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a task setting")
    for field in ("consent_text", "guidelines"):
        if field in options:
            options[field] = free_text(field, options[field], max_chars=20000)
    options.setdefault("consent_text", settings.ANNOTATION_DEFAULT_CONSENT)
    for field in ("prolific_study_id", "prolific_completion_code"):
        if options.get(field):
            options[field] = platform_id(field, str(options[field]))
    _check_platform(options)
    return CrowdTask.objects.create(name=name[:120], batch=batch, round=round_, **options)


@transaction.atomic
def create_game_task(
    *,
    name: str,
    round_: Round,
    pay_per_game: Decimal | None = None,
    pay_per_minute: Decimal | None = None,
    **options,
) -> CrowdTask:
    """A crowd task for live play of a round.

    Live play pays the study's rates (``Study.base_pay`` per game, ``waiting_pay_per_minute``
    in the lobby; see ``games.live``), so the pay given here sets those rates for every round
    of the study, in the same transaction as the task."""
    name = free_text("name", name, max_chars=120)
    if not name:
        raise InputError("name", "is required")
    study = round_.study
    rates = {
        "pay_per_game": ("base_pay", pay_per_game),
        "pay_per_minute": ("waiting_pay_per_minute", pay_per_minute),
    }
    changed = []
    for label, (field, amount) in rates.items():
        if amount is not None:
            _check_amount(label, amount)
            setattr(study, field, amount)
            changed.append(field)
    task = create_task(name=name, round_=round_, **options)
    if changed:
        study.save(update_fields=changed)
    return task


def create_quiz(
    *,
    name: str,
    pass_mark: int,
    questions: Sequence[Mapping[str, Any]],
    instructions: str = "",
    max_attempts: int = 3,
) -> Quiz:
    """A qualification quiz; each question has ``text``, ``choices`` and ``correct_choice`` (an
    index into the choices). Every text is checked before the quiz and its questions are
    written, together."""
    name = free_text("name", name)
    instructions = free_text("instructions", instructions)
    for n, question in enumerate(questions):
        free_text(f"questions[{n}].text", question["text"])
        choices = question["choices"]
        for c, choice in enumerate(choices):
            free_text(f"questions[{n}].choices[{c}]", choice)
        if question["correct_choice"] >= len(choices):
            raise InputError(f"questions[{n}].correct_choice", "is not one of the choices")
    if Quiz.objects.filter(name=name).exists():
        raise InputError("name", "a quiz with this name exists")
    with transaction.atomic():
        quiz = Quiz.objects.create(
            name=name, instructions=instructions, pass_mark=pass_mark, max_attempts=max_attempts
        )
        QuizQuestion.objects.bulk_create(
            QuizQuestion(quiz=quiz, position=n, **q) for n, q in enumerate(questions)
        )
    return quiz
