"""Which label each training turn uses, and whether a system's rounds are labelled enough to train.

A system learns from the games of rounds ≤ ρ of its lineage (``selectors.lineage_systems``). Each
turn takes the label of the system's decoder and kind at the newest decoder version that
labelled *that turn*: relabelling one round with a newer version replaces that round's labels
and leaves the other rounds' labels in place.

``label_readiness`` is the one check of "are the labels there?": the launch of a run
(``selectors.interaction_set``) and the round board's Train step both read its ``refusal``, so
the board never offers a run the launch would refuse, nor the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef

from games.models import FeedbackLabel, Game, Study, System, Turn

from ..selectors import with_follow_up
from .selectors import TrainingError, decoder_kind, decoder_name, lineage_systems


@dataclass(frozen=True)
class TurnLabel:
    """The label a turn trains with: the stored row, its value and the version that wrote it."""

    label_id: int
    label: str
    version: str


def newest_labels(turn_ids: Sequence[int], decoder: str, kind: str) -> dict[int, TurnLabel]:
    """Per turn, the label of ``decoder`` and ``kind`` at the newest version that labelled it
    (by the time it was stored; ties by id). Turns without such a label are absent."""
    rows = (
        FeedbackLabel.objects.filter(turn_id__in=turn_ids, decoder=decoder, kind=kind)
        .order_by("turn_id", "-created_at", "-pk")
        .values_list("turn_id", "pk", "label", "model_version")
    )
    found: dict[int, TurnLabel] = {}
    for turn_id, pk, label, version in rows:
        found.setdefault(turn_id, TurnLabel(pk, label, version))
    return found


@dataclass(frozen=True)
class RoundLabels:
    """One round a system learns from: whose games, and how many of their decodable turns (a
    follow-up utterance exists) carry a label of the system's decoder and kind."""

    round_index: int
    systems: tuple[str, ...]
    labelled: int
    needed: int


@dataclass(frozen=True)
class LabelReadiness:
    system: str
    round_index: int
    decoder: str
    kind: str
    rounds: tuple[RoundLabels, ...]
    refusal: str | None


def _decodable_turns(systems: Sequence[System]):
    """The decodable turns (``with_follow_up``) of the ended games of ``systems``."""
    return with_follow_up(
        Turn.objects.filter(game__system__in=list(systems), game__status=Game.Status.ENDED)
    )


def _per_round(turns) -> dict[int, int]:
    return dict(
        turns.values("game__round__index")
        .annotate(n=Count("id"))
        .values_list("game__round__index", "n")
    )


def label_readiness(study: Study, round_index: int, system: System) -> LabelReadiness:
    """Per round that ``system`` learns from in rounds ≤ ``round_index``: labelled and needed
    turns, and the reason a run cannot be launched yet (None when it can, as far as labels
    and games go). The first round missing labels is named; then a round ρ without any turn
    to learn from."""
    try:
        kind = decoder_kind(system.name)
    except TrainingError as error:
        return LabelReadiness(system.name, round_index, "", "", (), str(error))
    decoder = decoder_name(system)
    lineage = lineage_systems(study, round_index, system.name)
    turns = _decodable_turns(lineage)
    labels = FeedbackLabel.objects.filter(turn_id=OuterRef("pk"), decoder=decoder, kind=kind)
    needed = _per_round(turns)
    labelled = _per_round(turns.filter(Exists(labels)))
    indices = sorted({s.round.index for s in lineage} | {round_index})
    rounds = tuple(
        RoundLabels(
            index,
            tuple(s.name for s in lineage if s.round.index == index),
            labelled.get(index, 0),
            needed.get(index, 0),
        )
        for index in indices
    )
    refusal = _refusal(round_index, decoder, kind, rounds)
    return LabelReadiness(system.name, round_index, decoder, kind, rounds, refusal)


def _refusal(
    round_index: int, decoder: str, kind: str, rounds: Sequence[RoundLabels]
) -> str | None:
    for row in rounds:
        if row.labelled < row.needed:
            where = "" if row.round_index == round_index else f" round {row.round_index}"
            return (
                f"decode{where} first: {row.labelled} of {row.needed} turns labelled ({kind}, "
                f"{decoder})"
            )
    if not any(row.needed for row in rounds if row.round_index == round_index):
        return "collect games first: nothing to learn from yet"
    return None


__all__ = ["LabelReadiness", "RoundLabels", "TurnLabel", "label_readiness", "newest_labels"]
