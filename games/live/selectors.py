"""Reads of live play: what a worker earned, and the live state of a study's games."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from games.models import Game, GameEarning, LobbyEntry, Study, Worker


def worker_game_earnings(worker: Worker) -> Decimal:
    """Everything a worker is owed for games: base pay, bonuses and waiting pay."""
    total = GameEarning.objects.filter(worker=worker).aggregate(total=Sum("amount"))["total"]
    return (total or Decimal("0")).quantize(Decimal("0.01"))


def game_earnings(game: Game, worker_id: int) -> list[GameEarning]:
    return list(GameEarning.objects.filter(game=game, worker_id=worker_id).order_by("kind"))


@dataclass(frozen=True)
class LiveOverview:
    waiting: list[LobbyEntry]
    playing: list[Game]
    ended: list[Game]


def live_overview(study: Study, ended_limit: int = 50) -> LiveOverview:
    """The lobby and the games of a study as they are now (for the researchers' live page).

    Every game carries ``turns_played``, the number of its recorded turns."""
    waiting = list(
        LobbyEntry.objects.filter(round__study=study, status=LobbyEntry.Status.WAITING)
        .select_related("round", "worker")
        .order_by("arrived_at")
    )
    # turns_played counts the game's turn rows: imported games never moved turn_index.
    live = (
        Game.objects.filter(study=study)
        .select_related("round", "system")
        .annotate(turns_played=Count("turns"))
    )
    playing = list(
        live.filter(status__in=[Game.Status.WAITING, Game.Status.PLAYING]).order_by("started_at")
    )
    ended = list(live.filter(status=Game.Status.ENDED).order_by("-ended_at", "-id")[:ended_limit])
    return LiveOverview(waiting=waiting, playing=playing, ended=ended)
