"""Small builders of domain objects for tests (no randomness unless a seed is given)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import Group, User
from django.db import transaction

from games.actions import action_between
from games.live import engine
from games.models import Game, GameConfig, Round, RoundSlot, Study, System, Tangram, Turn, Worker
from games.roles import ADMINS_GROUP, RESEARCHERS_GROUP


def make_tangrams(count: int = 10, prefix: str = "page9-") -> list[Tangram]:
    return [
        Tangram.objects.get_or_create(name=f"{prefix}{i}", defaults={"split": "train"})[0]
        for i in range(count)
    ]


def make_study(name: str = "study", **settings) -> Study:
    return Study.objects.create(name=name, **settings)


def make_system(study: Study, round_index: int = 0, name: str = "B-FFT") -> System:
    round_, _ = Round.objects.get_or_create(study=study, index=round_index)
    system, _ = System.objects.get_or_create(round=round_, name=name)
    return system


def make_game(
    system: System,
    selections: Sequence[Sequence[str]],
    utterances: Sequence[str] | None = None,
    *,
    targets: Sequence[str] | None = None,
    external_id: str | None = None,
    outcome: str = "unsuccessful",
    tangram_prefix: str = "page9-",
) -> Game:
    """An ended game whose turn t leaves the listener's selection at ``selections[t]``.

    The context is ten tangrams named ``{prefix}0`` … ``{prefix}9``; the listener order is the
    speaker order reversed, so ``{prefix}9`` is letter A.
    """
    study = system.round.study
    tangrams = [t.name for t in make_tangrams(study.context_size, tangram_prefix)]
    listener_order = list(reversed(tangrams))
    config = GameConfig.objects.create(
        study=study,
        speaker_order=tangrams,
        listener_order=listener_order,
        targets=list(targets or tangrams[:3]),
    )
    game = Game.objects.create(
        study=study,
        round=system.round,
        system=system,
        config=config,
        external_id=external_id or f"g{Game.objects.count() + 1}",
        status=Game.Status.ENDED,
        outcome=outcome,
    )
    before: list[str] = []
    for index, after in enumerate(selections):
        ordered_after = [t for t in listener_order if t in set(after)]
        Turn.objects.create(
            game=game,
            index=index,
            utterance=(utterances[index] if utterances else f"utterance {index}"),
            selection_before=before,
            selection_after=ordered_after,
            action=action_between(listener_order, before, ordered_after),
        )
        before = ordered_after
    return game


def start_live_game(
    system: System,
    config: GameConfig,
    speaker: Worker,
    listener: Worker | None = None,
    *,
    now: datetime,
    external_id: str = "g1",
    slot: RoundSlot | None = None,
) -> Game:
    """A live game of ``system`` on ``config``, opened by the engine at ``now`` (turn 0, the
    speaker's phase), in one transaction as the lobby does."""
    with transaction.atomic():
        game = Game.objects.create(
            study=config.study,
            round=system.round,
            system=system,
            config=config,
            slot=slot,
            external_id=external_id,
            speaker=speaker,
            listener=listener,
        )
        engine.start_game(game, now)
    return game


def make_user(username: str, *, role: str | None = None, password: str = "pw-for-tests") -> User:
    """A Django user; ``role`` is ``researcher`` or ``admin`` (a superuser)."""
    if role == "admin":
        user = User.objects.create_superuser(username, f"{username}@example.org", password)
    else:
        user = User.objects.create_user(username, f"{username}@example.org", password)
    if role == "researcher":
        user.groups.add(Group.objects.get_or_create(name=RESEARCHERS_GROUP)[0])
    elif role == "admin":
        user.groups.add(Group.objects.get_or_create(name=ADMINS_GROUP)[0])
    return user
