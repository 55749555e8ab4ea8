"""Gold games: games with known answers mixed into a batch to measure annotators.

Validated before anything is written, in one transaction; refusals raise ``InputError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Coalesce

from games.models import Game

from .models import AnnotationBatch, BatchItem, GoldAnswer
from .survey import checked_action, checked_satisfaction
from .validation import InputError


@transaction.atomic
def add_gold_game(batch: AnnotationBatch, game: Game, answers: Sequence[Mapping]) -> BatchItem:
    """Mix a game with known answers into a batch. ``answers``: one mapping per turn with
    ``turn`` (index), ``action`` (canonical a*) and ``satisfaction`` ('' on the last turn)."""
    if game.round_id != batch.round_id:
        raise InputError("game", f"game {game.external_id} is not from the batch's round")
    if BatchItem.objects.filter(batch=batch, game=game).exists():
        raise InputError("game", f"game {game.external_id} is already in the batch")
    turns = list(game.turns.filter(selection_after__isnull=False).order_by("index"))
    by_index = {}
    for position, answer in enumerate(answers):
        index = answer.get("turn")
        if not isinstance(index, int) or not 0 <= index < len(turns):
            raise InputError(f"answers[{position}].turn", "is not a turn of the game")
        if index in by_index:
            raise InputError(f"answers[{position}].turn", f"turn {index} is given twice")
        by_index[index] = answer
    missing = sorted(set(range(len(turns))) - set(by_index))
    if missing:
        raise InputError("answers", f"turns {missing} have no answer")
    gold = []
    for turn in turns:
        answer = by_index[turn.index]
        action = checked_action(f"answers[turn {turn.index}].action", answer.get("action"), turn)
        satisfaction = checked_satisfaction(
            f"answers[turn {turn.index}].satisfaction",
            answer.get("satisfaction", ""),
            last=turn.index == len(turns) - 1,
        )
        gold.append((turn, action, satisfaction))
    position = batch.items.aggregate(m=Coalesce(Max("position"), -1))["m"] + 1
    item = BatchItem.objects.create(
        batch=batch, game=game, position=position, required_annotations=1, is_gold=True
    )
    GoldAnswer.objects.bulk_create(
        GoldAnswer(item=item, turn=turn, action=action, satisfaction=sat)
        for turn, action, sat in gold
    )
    return item
