"""A group's metrics written as per-game sum columns, and the parts of its rows without intervals.

``group_columns`` turns one ``GroupInput`` into ``SumColumns`` (every metric with an interval,
as sums over games: interaction, language, turn level, decoder, agreement) and the row fields
that are plain counts; ``evaluation.stats.study`` resamples the columns and finishes the rows.
Annotated turns, decoder labels and agreement items add to the sums of their games (games are the
clusters; a game without annotations adds nothing to the turn-level sums).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import agreement as agr
from . import decoder as dec
from . import interaction, language, turns
from .conventions import PER_TURN, SIM_NEG_FB_NOT_POSITIVE, Conventions
from .inputs import GroupInput, MetricParameters, StudyInput
from .sums import SumColumns


def json_number(value: float) -> float | None:
    """A float for the results JSON: None for a missing or non-finite value."""
    return None if value is None or not math.isfinite(value) else float(value)


def _count(value: float) -> int | float:
    """Integers stay integers; weighted (fractional) counts keep four decimals."""
    return int(round(value)) if abs(value - round(value)) < 1e-9 else round(float(value), 4)


def _bincount(index: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    if index.size == 0:
        return np.zeros(n)
    return np.bincount(index, weights=weights, minlength=n).astype(float)


@dataclass
class GroupColumns:
    """A group's per-game sums and statistics, and the parts of its rows that need no bootstrap."""

    columns: SumColumns
    row: dict
    agreement: dict | None
    decoder: dict[str, dict]


def sim_neg_fb_answers(
    satisfaction: np.ndarray, conventions: Conventions, satisfaction_classes: Mapping[str, str]
) -> np.ndarray:
    """Per annotation: whether Sim −FB averages over it under ``conventions``.

    The platform: its satisfaction maps to ``negative`` (``satisfaction_classes``); the paper:
    it has an answer that does not count as positive feedback (anything but a plain ``yes``).
    """
    if conventions.sim_neg_fb == SIM_NEG_FB_NOT_POSITIVE:
        return turns.without_positive_feedback(satisfaction, conventions.positive_answers)
    ternary = dec.reference_classes(satisfaction, "ternary", satisfaction_classes)
    return ternary == dec.NEGATIVE


def group_columns(group: GroupInput, study: StudyInput, params: MetricParameters) -> GroupColumns:
    """Everything about one group except the resampling (under ``params.conventions``)."""
    conventions = params.conventions
    n = group.n_games
    turn_game = np.asarray(group.turn_game, dtype=np.intp)
    before = np.asarray(group.before, dtype=bool)
    after = np.asarray(group.after, dtype=bool)
    targets = np.asarray(group.targets, dtype=bool)
    cols = SumColumns(n)
    ones = np.ones(n)

    # Interaction level.
    successful = np.asarray(group.successful, dtype=bool)
    turns_per_game = _bincount(turn_game, None, n)
    clicks, correct = interaction.click_counts(before, after, targets[turn_game])
    game_clicks = _bincount(turn_game, clicks.astype(float), n)
    game_correct = _bincount(turn_game, correct.astype(float), n)
    cols.ratio("success_rate", successful, ones)
    cols.ratio("turns_per_game", turns_per_game, ones)
    cols.ratio("click_accuracy", game_correct, game_clicks)

    # Language.
    utterances = list(group.utterances)
    spoken = np.array([bool(u.strip()) for u in utterances], dtype=bool)
    lengths = language.utterance_lengths(utterances, conventions.tokens).astype(float)
    game_utterances = _bincount(turn_game, spoken.astype(float), n)
    length_per = turns_per_game if conventions.length_per == PER_TURN else game_utterances
    cols.ratio("utterance_length", _bincount(turn_game, lengths, n), length_per)
    phrases = np.column_stack(
        [
            language.phrase_counts_by_group(utterances, turn_game, n, phrase_set)
            for phrase_set in (language.RESET_PHRASES, language.TRY_AGAIN_PHRASES)
        ]
    ).astype(float)
    cols.ratio("reset_per_100", phrases[:, 0], game_utterances, 100.0)
    cols.ratio("try_again_per_100", phrases[:, 1], game_utterances, 100.0)

    row: dict = {
        "round": int(group.round_index),
        "system": group.system,
        "games": n,
        "successful_games": int(successful.sum()),
        "turns": int(turn_game.size),
        "clicks": int(clicks.sum()),
        "correct_clicks": int(correct.sum()),
        "utterances": int(spoken.sum()),
        "vocabulary_size": language.vocabulary_size(utterances, conventions.tokens),
        "reset_phrases": int(phrases[:, 0].sum()),
        "try_again_phrases": int(phrases[:, 1].sum()),
    }
    agreement_row = None
    decoder_blocks: dict[str, dict] = {}

    ann = group.annotations
    if ann is not None and len(ann.turn):
        ann_turn = np.asarray(ann.turn, dtype=np.intp)
        ann_game = turn_game[ann_turn]
        per_turn = np.bincount(ann_turn, minlength=turn_game.size)
        weight = 1.0 / per_turn[ann_turn]
        pred_select = after[ann_turn] & ~before[ann_turn]
        pred_deselect = before[ann_turn] & ~after[ann_turn]
        gold_select = np.asarray(ann.select, dtype=bool)
        gold_deselect = np.asarray(ann.deselect, dtype=bool)
        matches = turns.actions_equal(pred_select, pred_deselect, gold_select, gold_deselect)
        similarity = _annotation_similarity(group, study, ann_game)
        sim = turns.action_similarity(
            pred_select, pred_deselect, gold_select, gold_deselect, similarity
        )
        satisfaction = np.asarray(ann.satisfaction, dtype=object)
        answered = turns.has_satisfaction(satisfaction)
        satisfied = turns.is_satisfied(satisfaction, conventions.positive_answers)
        negative = sim_neg_fb_answers(satisfaction, conventions, params.satisfaction_classes)

        def game_sum(values: np.ndarray) -> np.ndarray:
            return _bincount(ann_game, weight * np.asarray(values, dtype=float), n)

        cols.ratio("exact_match", game_sum(matches), game_sum(np.ones(matches.size)))
        cols.ratio("positive_feedback", game_sum(satisfied & answered), game_sum(answered))
        cols.ratio("sim", game_sum(sim), game_sum(np.ones(sim.size)))
        cols.ratio("sim_neg_fb", game_sum(np.where(negative, sim, 0.0)), game_sum(negative))
        row.update(
            {
                "annotated_turns": int(np.unique(ann_turn).size),
                "annotations": int(ann_turn.size),
                "negative_feedback_turns": _count(float((weight * negative).sum())),
                "similarity": study.similarity_label,
            }
        )
        for kind, labels in sorted(group.labels.items()):
            block = _decoder_columns(
                kind,
                labels,
                ann_turn,
                ann_game,
                weight,
                satisfaction,
                turn_game.size,
                n,
                params,
                cols,
            )
            if block is not None:
                decoder_blocks[kind] = block
        agreement_row = _agreement_columns(
            group, ann_turn, ann_game, matches, gold_select, gold_deselect, satisfaction, n, cols
        )

    return GroupColumns(cols, row, agreement_row, decoder_blocks)


def _annotation_similarity(group: GroupInput, study: StudyInput, ann_game: np.ndarray):
    """(a × K × K) similarities between the context images of each annotation's game."""
    context = np.asarray(group.context, dtype=np.intp)[ann_game]
    if study.similarity is None:
        same = context[:, :, None] == context[:, None, :]
        return same.astype(float)
    matrix = np.asarray(study.similarity, dtype=float)
    return matrix[context[:, :, None], context[:, None, :]]


def _decoder_columns(
    kind, labels, ann_turn, ann_game, weight, satisfaction, n_turns, n, params, cols: SumColumns
) -> dict | None:
    classes = dec.CLASSES_BY_KIND[kind]
    label_of_turn = np.full(n_turns, None, dtype=object)
    label_of_turn[np.asarray(labels.turn, dtype=np.intp)] = np.asarray(labels.label, dtype=object)
    predicted = label_of_turn[ann_turn]
    reference = dec.reference_classes(
        satisfaction, kind, params.satisfaction_classes, params.binary_neutral_as
    )
    usable = (predicted != None) & (reference != "")  # noqa: E711 (elementwise on objects)
    if not usable.any():
        return None
    ref, pred, w, game = reference[usable], predicted[usable], weight[usable], ann_game[usable]
    matrix = dec.confusion_matrix(ref, pred, classes, w)
    width = len(classes) + 1
    row_code = np.array([classes.index(r) for r in ref], dtype=np.intp)
    col_names = [*classes, dec.UNPARSEABLE]
    col_code = np.array([col_names.index(p) for p in pred], dtype=np.intp)
    cell = row_code * width + col_code
    per_game = np.zeros((n, len(classes) * width))
    np.add.at(per_game, (game, cell), w)
    names = [f"decoder:{kind}:{name}" for name in dec.summary_names(classes)]
    where = cols.add(per_game)
    cols.custom(names, np.arange(where.start, where.stop), dec.summary_statistic(len(classes)))
    return {
        "decoder": labels.decoder,
        "items": _count(float(w.sum())),
        "classes": list(classes),
        "columns": col_names,
        "confusion": [[_count(v) for v in r] for r in matrix.tolist()],
        "normalized": {
            by: [[json_number(v) for v in r] for r in dec.normalize_confusion(matrix, by).tolist()]
            for by in dec.NORMALIZATIONS
        },
    }


def _action_keys(select: np.ndarray, deselect: np.ndarray) -> np.ndarray:
    """A string key per action (two bit patterns), for agreement on the identical a*."""
    powers = 1 << np.arange(select.shape[1], dtype=np.int64)
    return np.array(
        [
            f"{d}:{s}"
            for d, s in zip((deselect @ powers).tolist(), (select @ powers).tolist(), strict=True)
        ],
        dtype=object,
    )


def _agreement_columns(
    group,
    ann_turn,
    ann_game,
    matches,
    gold_select,
    gold_deselect,
    satisfaction,
    n,
    cols: SumColumns,
) -> dict | None:
    per_turn = np.bincount(ann_turn)
    multi = per_turn[ann_turn] >= 2
    if not multi.any():
        return None
    raters = np.asarray(group.annotations.rater, dtype=object)
    variables = {
        "correctness": (np.ones(ann_turn.size, bool), matches.astype(str)),
        "action": (np.ones(ann_turn.size, bool), _action_keys(gold_select, gold_deselect)),
        "satisfaction": (turns.has_satisfaction(satisfaction), satisfaction.astype(str)),
    }
    row: dict = {
        "round": int(group.round_index),
        "system": group.system,
        "items": int(np.unique(ann_turn[multi]).size),
        "annotators": int(np.unique(raters[multi]).size),
        "annotations": int(multi.sum()),
    }
    turn_game = np.asarray(group.turn_game, dtype=np.intp)
    for variable, (keep, values) in variables.items():
        use = multi & keep
        part: dict = {"items": 0, "fleiss_items": 0, "pairs": []}
        row[variable] = part
        if not use.any():
            continue
        table = agr.rating_table(ann_turn[use], values[use])
        counts = table.counts
        rated = agr.raters_per_item(counts) >= 2
        item_game = turn_game[table.items.astype(np.intp)]
        counts, item_game = counts[rated], item_game[rated]
        part["items"] = int(counts.shape[0])
        if counts.shape[0] == 0:
            continue
        unanimous = agr.unanimous(counts).astype(float)
        name = f"agreement:{variable}:"
        cols.ratio(
            name + "percent", _bincount(item_game, unanimous, n), _bincount(item_game, None, n)
        )
        fleiss_mask = agr.fleiss_items(counts)
        part["fleiss_items"] = int(fleiss_mask.sum())
        part["fleiss_raters"] = int(agr.raters_per_item(counts)[fleiss_mask][0])
        linear, categories = agr.fleiss_parts(counts, fleiss_mask)
        where = cols.add(_per_game(linear, item_game, n))
        squares = cols.add_square_totals(_per_game(categories, item_game, n))
        cols.custom(
            [name + "fleiss_kappa"],
            np.r_[np.arange(where.start, where.stop), squares],
            agr.fleiss_statistic,
        )
        linear, categories = agr.krippendorff_parts(counts)
        where = cols.add(_per_game(linear, item_game, n))
        squares = cols.add_square_totals(_per_game(categories, item_game, n))
        cols.custom(
            [name + "krippendorff_alpha"],
            np.r_[np.arange(where.start, where.stop), squares],
            agr.krippendorff_statistic,
        )
        part["pairs"] = [
            {
                "first": p.first,
                "second": p.second,
                "items": p.items,
                "cohen_kappa": json_number(p.kappa),
            }
            for p in agr.pairwise_cohen_kappa(ann_turn[use], raters[use], values[use])
        ]
    return row


def _per_game(item_sums: np.ndarray, item_game: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, item_sums.shape[1]))
    np.add.at(out, item_game, item_sums)
    return out
