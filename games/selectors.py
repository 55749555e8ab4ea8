"""Read queries of the games app (a plain module of functions; no writes here).

Every list query fetches its related rows up front (``select_related`` / ``prefetch_related``)
or aggregates in the database, so a page costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from games.actions import ActionError, action_between, letter_map
from games.models import FeedbackLabel, Game, Round, Study, System, Tangram, Turn

SUCCESSFUL = Game.Outcome.SUCCESSFUL


def _count(queryset: QuerySet, group_by: str) -> Coalesce:
    """A correlated ``COUNT(*)`` subquery over ``queryset`` grouped by ``group_by``."""
    counted = queryset.order_by().values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class GameRates:
    """Success rate and turns per game of a tally with ``games``, ``ended``, ``successful`` and
    ``turns`` counts."""

    games: int
    ended: int
    successful: int
    turns: int

    @property
    def success_rate(self) -> float | None:
        """Successful games among ended games."""
        return rate(self.successful, self.ended)

    @property
    def turns_per_game(self) -> float | None:
        return rate(self.turns, self.games)


# --- studies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudySummary(GameRates):
    study: Study
    rounds: int
    systems: int
    games: int
    ended: int
    successful: int
    turns: int


def study_summaries() -> list[StudySummary]:
    """Every study with its counts, in one query (correlated subqueries, no join fan-out)."""
    studies = Study.objects.annotate(
        n_rounds=_count(Round.objects.filter(study=OuterRef("pk")), "study"),
        n_systems=_count(System.objects.filter(round__study=OuterRef("pk")), "round__study"),
        n_games=_count(Game.objects.filter(study=OuterRef("pk")), "study"),
        n_ended=_count(
            Game.objects.filter(study=OuterRef("pk"), status=Game.Status.ENDED), "study"
        ),
        n_successful=_count(Game.objects.filter(study=OuterRef("pk"), outcome=SUCCESSFUL), "study"),
        n_turns=_count(Turn.objects.filter(game__study=OuterRef("pk")), "game__study"),
    ).order_by("-created_at", "name")
    return [
        StudySummary(
            study=s,
            rounds=s.n_rounds,
            systems=s.n_systems,
            games=s.n_games,
            ended=s.n_ended,
            successful=s.n_successful,
            turns=s.n_turns,
        )
        for s in studies
    ]


def tangram_library_counts() -> dict[str, int]:
    """How many tangrams the library holds, in total and per split and source."""
    totals = Tangram.objects.aggregate(
        total=Count("pk"),
        dev=Count("pk", filter=Q(split=Tangram.Split.DEV)),
        train=Count("pk", filter=Q(split=Tangram.Split.TRAIN)),
        test=Count("pk", filter=Q(split=Tangram.Split.TEST)),
        generated=Count("pk", filter=Q(source="generated")),
        without_image=Count("pk", filter=Q(image="")),
    )
    return totals


def study_rounds(study: Study) -> list[Round]:
    """The study's rounds with their systems (two queries)."""
    return list(study.rounds.prefetch_related("systems").order_by("index"))


# --- games of a study --------------------------------------------------------------------------


@dataclass(frozen=True)
class GameFilters:
    """What the study page may filter on; empty values filter nothing."""

    round_index: int | None = None
    system: str = ""
    outcome: str = ""
    speaker: str = ""


OUTCOME_FILTERS = {
    "successful": Q(outcome=Game.Outcome.SUCCESSFUL),
    "unsuccessful": Q(outcome=Game.Outcome.UNSUCCESSFUL),
    "idle": Q(outcome=Game.Outcome.IDLE),
    "not-ended": ~Q(status=Game.Status.ENDED),
}


def study_games(study: Study, filters: GameFilters = GameFilters()) -> QuerySet[Game]:
    """The study's games matching ``filters``, with round, system, workers and turn count."""
    games = Game.objects.filter(study=study)
    if filters.round_index is not None:
        games = games.filter(round__index=filters.round_index)
    if filters.system:
        games = games.filter(system__name=filters.system)
    if filters.outcome:
        games = games.filter(OUTCOME_FILTERS[filters.outcome])
    if filters.speaker:
        games = games.filter(speaker__id_hash__istartswith=filters.speaker.strip())
    return (
        games.select_related("round", "system", "speaker", "listener")
        .annotate(n_turns=_count(Turn.objects.filter(game=OuterRef("pk")), "game"))
        .order_by("round__index", "system__name", "created_at", "pk")
    )


@dataclass(frozen=True)
class GroupCounts(GameRates):
    round_index: int | None
    system: str
    games: int
    ended: int
    successful: int
    turns: int


def game_counts(games: QuerySet[Game]) -> tuple[GroupCounts, list[GroupCounts]]:
    """Totals of ``games`` and the same per round × system (two aggregate queries)."""
    plain = games.order_by()
    turns = Turn.objects.filter(game__in=plain.values("pk"))
    turns_by_group = {
        (row["game__round__index"], row["game__system__name"]): row["n"]
        for row in turns.order_by()
        .values("game__round__index", "game__system__name")
        .annotate(n=Count("pk"))
    }
    groups = [
        GroupCounts(
            round_index=row["round__index"],
            system=row["system__name"],
            games=row["games"],
            ended=row["ended"],
            successful=row["successful"],
            turns=turns_by_group.get((row["round__index"], row["system__name"]), 0),
        )
        for row in plain.values("round__index", "system__name")
        .annotate(
            games=Count("pk"),
            ended=Count("pk", filter=Q(status=Game.Status.ENDED)),
            successful=Count("pk", filter=Q(outcome=SUCCESSFUL)),
        )
        .order_by("round__index", "system__name")
    ]
    total = GroupCounts(
        round_index=None,
        system="",
        games=sum(g.games for g in groups),
        ended=sum(g.ended for g in groups),
        successful=sum(g.successful for g in groups),
        turns=sum(g.turns for g in groups),
    )
    return total, groups


# --- one game, turn by turn --------------------------------------------------------------------


@dataclass(frozen=True)
class ImageState:
    """One context image as it stands in one turn."""

    name: str
    letter: str
    is_target: bool
    selected_before: bool
    selected_after: bool

    @property
    def changed(self) -> bool:
        return self.selected_before != self.selected_after

    @property
    def change(self) -> str:
        if not self.changed:
            return ""
        return "selected" if self.selected_after else "deselected"

    @property
    def correctness(self) -> str:
        """For a selected image: ``correct`` if it is a target, ``wrong`` otherwise."""
        if not self.selected_after:
            return ""
        return "correct" if self.is_target else "wrong"


@dataclass(frozen=True)
class TurnReplay:
    turn: Turn
    number: int
    images_listener: list[ImageState]
    images_speaker: list[ImageState]
    derived_action: str | None
    follow_up: str | None
    labels: list[FeedbackLabel] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.turn.selection_after is not None

    @property
    def action_mismatch(self) -> bool:
        """The stored action string disagrees with the two recorded selections."""
        return self.answered and self.derived_action != self.turn.action

    @property
    def changed_letters(self) -> list[str]:
        return sorted(image.letter for image in self.images_listener if image.changed)

    @property
    def selected_after_letters(self) -> list[str]:
        return [image.letter for image in self.images_listener if image.selected_after]


@dataclass(frozen=True)
class GameReplay:
    game: Game
    letters: dict[str, str]
    target_letters: list[str]
    turns: list[TurnReplay]


def game_for_replay(game_pk: int) -> Game:
    """The game with everything its replay shows (three queries); raises ``Game.DoesNotExist``."""
    games = Game.objects.select_related(
        "study", "round", "system", "config", "speaker", "listener"
    ).prefetch_related(
        Prefetch(
            "turns",
            queryset=Turn.objects.order_by("index").prefetch_related(
                Prefetch(
                    "feedback_labels",
                    queryset=FeedbackLabel.objects.order_by("kind", "decoder", "model_version"),
                )
            ),
        )
    )
    return games.get(pk=game_pk)


def _images(
    order: Sequence[str], letters: dict[str, str], targets: set[str], before: set, after: set
) -> list[ImageState]:
    return [
        ImageState(name, letters[name], name in targets, name in before, name in after)
        for name in order
    ]


def game_replay(game: Game) -> GameReplay:
    """The game's turns with each image's state, in listener and in speaker order.

    Letters A-J always follow the listener order (the protocol of every action string), also
    when the images are shown in the speaker's order.
    """
    config = game.config
    listener_order = list(config.listener_order)
    letters = letter_map(listener_order)
    targets = set(config.targets)
    turns = list(game.turns.all())
    replays = []
    for position, turn in enumerate(turns):
        before = set(turn.selection_before or [])
        after = set(turn.selection_after) if turn.selection_after is not None else before
        derived = None
        if turn.selection_after is not None:
            try:
                derived = action_between(listener_order, before, after)
            except ActionError:
                derived = None
        replays.append(
            TurnReplay(
                turn=turn,
                number=position + 1,
                images_listener=_images(listener_order, letters, targets, before, after),
                images_speaker=_images(config.speaker_order, letters, targets, before, after),
                derived_action=derived,
                follow_up=turns[position + 1].utterance if position + 1 < len(turns) else None,
                labels=list(turn.feedback_labels.all()),
            )
        )
    return GameReplay(
        game=game,
        letters=letters,
        target_letters=sorted(letters[t] for t in targets if t in letters),
        turns=replays,
    )


# --- live play (owned by the real-time games engineer; see games.live.selectors) ---------------

from games.live.selectors import live_overview, worker_game_earnings  # noqa: E402, F401
