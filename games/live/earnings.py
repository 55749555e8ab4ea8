"""What the players of a live game earn when it ends, and the click counts the bonus rests on."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from games.models import Game, GameEarning, Turn

CENT = Decimal("0.01")

Earnings = dict[int, list[GameEarning]]


def correct_clicks(turns: Iterable[Turn], targets: Iterable[str]) -> tuple[int, int]:
    """(correct clicks, clicks) as click accuracy counts them (docs/metrics.md), over answered
    turns."""
    target_set = set(targets)
    correct = total = 0
    for turn in turns:
        if turn.selection_after is None:
            continue
        before, after = set(turn.selection_before), set(turn.selection_after)
        for name in after - before:
            total += 1
            correct += name in target_set
        for name in before - after:
            total += 1
            correct += name not in target_set
    return correct, total


def award(game: Game, turns: list[Turn], players: list[int | None], idler: int | None) -> Earnings:
    """Earnings of the human ``players``; an idling player is not paid (the study's rule, see
    docs/protocols.md, "Payments").

    Stored in one statement; rows that already exist are left as they are (a game ends once,
    under its row lock, so there are none). Returns the rows by worker, every player included,
    for the end-of-game views.
    """
    study = game.study
    correct, _ = correct_clicks(turns, game.config.targets)
    awarded: Earnings = {}
    for worker_id in players:
        if worker_id is None:
            continue
        awarded[worker_id] = []
        if worker_id == idler:
            continue
        amounts = [(GameEarning.Kind.BASE, study.base_pay, "per game")]
        if game.outcome == Game.Outcome.SUCCESSFUL:
            amounts.append((GameEarning.Kind.SUCCESS_BONUS, study.success_bonus, "success"))
        if correct and study.correct_click_bonus:
            amounts.append(
                (
                    GameEarning.Kind.CLICK_BONUS,
                    study.correct_click_bonus * correct,
                    f"{correct} correct clicks",
                )
            )
        for kind, amount, detail in amounts:
            if amount > 0:
                awarded[worker_id].append(
                    GameEarning(
                        worker_id=worker_id,
                        game_id=game.pk,
                        kind=kind,
                        amount=amount.quantize(CENT),
                        detail=detail,
                    )
                )
    GameEarning.objects.bulk_create(
        [row for rows in awarded.values() for row in rows], ignore_conflicts=True
    )
    return awarded
