"""All metrics of a study, with bootstrap intervals, from plain arrays (no ORM).

``evaluation.selectors`` turns the database into a ``StudyInput``; this module computes
everything from it. Per group (round × system) every metric is written as sums over games, the
games are resampled once (one count matrix per group, seeded from the run's seed and the group's
name, so the result does not depend on which other groups exist or in what order they come), and
every interval comes from one matrix product. Annotated turns, decoder labels and agreement items
are resampled with their games (games are the clusters; a game without annotations simply adds
nothing to the turn-level sums).

``MetricParameters.conventions`` chooses the metric definitions (``conventions.PLATFORM``, the
default, or ``conventions.PAPER``: the study's published figures); one code path computes both.
"""

from __future__ import annotations

import contextlib
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

import numpy as np

from . import agreement as agr
from . import decoder as dec
from . import interaction, language, turns
from .bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    METHODS,
    Estimate,
    SumStatistic,
    counts_from_indices,
    interval_estimates,
    ratio_statistic,
    resample_indices,
    resampled_sums,
)
from .conventions import PER_TURN, PLATFORM, SIM_NEG_FB_NOT_POSITIVE, Conventions

STATS_VERSION = "1"
SYSTEM_ORDER = ("B-FFT", "T-FFT", "B-RL", "T-RL", "B-KTO", "T-KTO")
LATE_SYSTEMS = ("CONTROL", "HH")
IDENTITY_SIMILARITY = "identity similarity: no embeddings"
EMBEDDING_SIMILARITY = "cosine similarity of image embeddings"
SAMPLERS = ("fast", "scipy")
"""How resampled games are drawn: ``fast`` (small integer type) or ``scipy`` (scipy's draws)."""
MAX_COUNT_CELLS = 4_000_000  # resample-count entries held at once (memory bound per chunk)

ProgressCallback = Callable[[float, str], None]


def system_sort_key(name: str) -> tuple[int, int, str]:
    """Paper order (B-FFT, T-FFT, …), other systems alphabetically, then CONTROL and HH."""
    if name in SYSTEM_ORDER:
        return (0, SYSTEM_ORDER.index(name), name)
    if name in LATE_SYSTEMS:
        return (2, LATE_SYSTEMS.index(name), name)
    return (1, 0, name)


@dataclass(frozen=True)
class AnnotationInput:
    """Annotations of a group's turns: ``turn`` indexes the group's turns; masks are (a × K)."""

    turn: np.ndarray
    rater: np.ndarray
    select: np.ndarray
    deselect: np.ndarray
    satisfaction: np.ndarray


@dataclass(frozen=True)
class LabelInput:
    """One decoder label per labelled turn: ``turn`` indexes the group's turns."""

    turn: np.ndarray
    label: np.ndarray
    decoder: str = ""


@dataclass(frozen=True)
class GroupInput:
    """The ended games of one round × system.

    Masks are over each game's context in listener order (K columns; shorter contexts padded
    with False). ``context`` holds indices into ``StudyInput.tangrams`` (−1 for padding).
    ``turn_game`` gives each turn's game position (0 … n_games − 1).
    """

    round_index: int
    system: str
    successful: np.ndarray
    targets: np.ndarray
    context: np.ndarray
    turn_game: np.ndarray
    before: np.ndarray
    after: np.ndarray
    utterances: Sequence[str]
    annotations: AnnotationInput | None = None
    labels: Mapping[str, LabelInput] = field(default_factory=dict)

    @property
    def n_games(self) -> int:
        return int(len(self.successful))


@dataclass(frozen=True)
class StudyInput:
    name: str
    groups: Sequence[GroupInput]
    tangrams: Sequence[str] = ()
    similarity: np.ndarray | None = None
    similarity_label: str = IDENTITY_SIMILARITY


@dataclass(frozen=True)
class MetricParameters:
    """Everything a run's numbers depend on besides the data.

    ``method`` None means the interval method of ``conventions`` (BCa on the platform,
    percentile under the paper's); ``validated`` returns the parameters with it filled in.
    """

    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE
    method: str | None = None
    satisfaction_classes: Mapping[str, str] = field(
        default_factory=lambda: dict(dec.DEFAULT_SATISFACTION_CLASSES)
    )
    binary_neutral_as: str = dec.POSITIVE
    sampler: str = "fast"
    conventions: Conventions = PLATFORM

    @property
    def interval_method(self) -> str:
        """The interval method used: ``method``, else the conventions' one."""
        return self.conventions.interval if self.method is None else self.method

    def validated(self) -> MetricParameters:
        if not isinstance(self.conventions, Conventions):
            raise ValueError(f"conventions must be a Conventions, got {self.conventions!r}")
        if self.method is None:
            return replace(self, method=self.conventions.interval).validated()
        if not 1 <= int(self.resamples) <= 1_000_000:
            raise ValueError(f"resamples must be between 1 and 1,000,000, got {self.resamples}")
        if not 0 <= int(self.seed) < 2**63:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if not 0 < float(self.confidence) < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        dec.validate_mapping(self.satisfaction_classes)
        if self.binary_neutral_as not in dec.BINARY_CLASSES:
            raise ValueError(f"binary_neutral_as must be one of {dec.BINARY_CLASSES}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        return self

    def as_dict(self) -> dict:
        return {
            "resamples": int(self.resamples),
            "seed": int(self.seed),
            "confidence": float(self.confidence),
            "method": self.interval_method,
            "satisfaction_classes": dict(self.satisfaction_classes),
            "binary_neutral_as": self.binary_neutral_as,
            "sampler": self.sampler,
            "conventions": self.conventions.name,
            "stats_version": STATS_VERSION,
        }


def group_rng(seed: int, round_index: int, system: str) -> np.random.Generator:
    """The generator of one group: depends only on the seed and the group's name."""
    key = zlib.crc32(f"{round_index}/{system}".encode())
    return np.random.default_rng([int(seed), key])


class _Columns:
    """Per-game sum columns and the statistics defined on them, built up metric by metric.

    Most columns are linear: a resample's value is ``counts @ column``. A quadratic column holds
    Σ_c (Σ_games count · N[game, c])² for a per-game category block N (what Fleiss' κ and
    Krippendorff's α need); for a resample it is ``c G cᵀ`` with the Gram matrix G = N Nᵀ over the
    few games that have such items, so category blocks never enter the big product.
    """

    def __init__(self, n_games: int) -> None:
        self.n_games = n_games
        self.blocks: list[np.ndarray] = []
        self.width = 0
        self.ratios: list[tuple[str, int, int, float]] = []
        self.customs: list[tuple[list[str], np.ndarray, SumStatistic]] = []
        self.quadratic: list[tuple[int, np.ndarray]] = []

    def add(self, block: np.ndarray) -> slice:
        block = np.asarray(block, dtype=float)
        if block.ndim == 1:
            block = block[:, None]
        start = self.width
        self.blocks.append(block)
        self.width += block.shape[1]
        return slice(start, self.width)

    def add_square_totals(self, categories: np.ndarray) -> np.ndarray:
        """Columns [Σ_c T_c, Σ_c T_c²] of a (games × C) category block with totals T."""
        categories = np.asarray(categories, dtype=float)
        linear = self.add(categories.sum(axis=1)).start
        square = self.add(np.zeros(self.n_games)).start
        self.quadratic.append((square, categories))
        return np.array([linear, square])

    def ratio(self, name: str, numerator: np.ndarray, denominator: np.ndarray, scale=1.0) -> None:
        num = self.add(numerator).start
        den = self.add(denominator).start
        self.ratios.append((name, num, den, float(scale)))

    def custom(self, names: list[str], columns: np.ndarray, statistic: SumStatistic) -> None:
        """Statistics reading the sums of ``columns`` (indices from ``add`` and friends)."""
        self.customs.append((names, np.asarray(columns, dtype=np.intp), statistic))

    def names(self) -> list[str]:
        return [r[0] for r in self.ratios] + [n for names, _, _ in self.customs for n in names]

    def matrix(self) -> np.ndarray:
        if not self.blocks:
            return np.zeros((self.n_games, 0))
        return np.concatenate(self.blocks, axis=1)

    def statistic(self) -> SumStatistic:
        ratios = ratio_statistic(
            [r[1] for r in self.ratios], [r[2] for r in self.ratios], [r[3] for r in self.ratios]
        )
        customs = list(self.customs)

        def evaluate(sums: np.ndarray) -> np.ndarray:
            parts = [ratios(sums)]
            parts.extend(statistic(sums[..., where]) for _, where, statistic in customs)
            return np.concatenate(parts, axis=-1)

        return evaluate

    def sums(self, counts_chunks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(total, jackknife, resampled) sums; ``counts_chunks`` yields (b × n) count matrices."""
        per_game = self.matrix()
        total = per_game.sum(axis=0)
        jackknife = total - per_game
        resampled = []
        # Quadratic columns: games with items, and Gram matrices, shared where blocks agree.
        quadratic: dict[bytes, tuple[list[int], np.ndarray, np.ndarray]] = {}
        for column, block in self.quadratic:
            games = np.flatnonzero(block.any(axis=1))
            key = games.tobytes() + block[games].tobytes()
            if key not in quadratic:
                quadratic[key] = ([], games, block[games] @ block[games].T)
            quadratic[key][0].append(column)
        by_games: dict[bytes, list[tuple[list[int], np.ndarray]]] = {}
        for columns, games, gram in quadratic.values():
            by_games.setdefault(games.tobytes(), []).append((columns, gram))
        for counts in counts_chunks:
            chunk = resampled_sums(counts, per_game)
            for key, grams in by_games.items():
                games = np.frombuffer(key, dtype=np.intp)
                c = counts[:, games].astype(np.float64)
                for columns, gram in grams:
                    chunk[:, columns] = np.einsum("bi,bi->b", c @ gram, c)[:, None]
            resampled.append(chunk)
        for column, block in self.quadratic:
            totals = block.sum(axis=0)
            total[column] = totals @ totals
            jackknife[:, column] = totals @ totals - 2 * (block @ totals) + (block**2).sum(axis=1)
        return total, jackknife, np.concatenate(resampled, axis=0)

    def metrics(self) -> dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        """Per statistic name: per-game data (n × c) and the statistic as a function of its sums.

        For computing one metric at a time (the benchmark's scipy baseline does): quadratic
        columns are recomputed from the category blocks inside the function.
        """
        per_game = self.matrix()
        blocks = dict(self.quadratic)
        found: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {}
        for name, num, den, scale in self.ratios:

            def ratio(s: np.ndarray, k: float = scale) -> np.ndarray:
                return s[..., 0] / s[..., 1] * k

            found[name] = (per_game[:, [num, den]], ratio)
        for names, where, statistic in self.customs:
            square = [j for j, column in enumerate(where) if column in blocks]
            data = [per_game[:, where]] + [blocks[where[j]] for j in square]
            widths = [blocks[where[j]].shape[1] for j in square]
            size = len(where)

            def function(s, f=statistic, square=square, widths=widths, k=size):
                base = s[..., :k].copy()
                offset = k
                for j, width in zip(square, widths, strict=True):
                    totals = s[..., offset : offset + width]
                    base[..., j] = (totals**2).sum(axis=-1)
                    offset += width
                return f(base)

            for j, name in enumerate(names):

                def column(s: np.ndarray, g=function, j: int = j) -> np.ndarray:
                    return g(s)[..., j]

                found[name] = (np.concatenate(data, axis=1), column)
        return found


def bootstrap_columns(
    columns: _Columns, rng: np.random.Generator, params: MetricParameters
) -> dict[str, Estimate]:
    """Bootstrap every statistic of ``columns`` with one set of resampled games."""
    n = columns.n_games
    chunk = max(1, min(params.resamples, MAX_COUNT_CELLS // max(n, 1)))

    def chunks():
        done = 0
        while done < params.resamples:
            size = min(chunk, params.resamples - done)
            indices = resample_indices(n, size, rng, scipy_compatible=params.sampler == "scipy")
            yield counts_from_indices(indices, n, np.float32)
            done += size

    total, jackknife, resampled = columns.sums(chunks())
    estimates = interval_estimates(
        columns.statistic(), total, jackknife, resampled, params.confidence
    )
    return dict(zip(columns.names(), estimates, strict=True))


def _estimate(estimate: Estimate | None, method: str) -> dict | None:
    if estimate is None:
        return None
    lo, hi = estimate.interval(method)
    return {"value": _num(estimate.value), "ci": [_num(lo), _num(hi)]}


def _num(value: float) -> float | None:
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

    columns: _Columns
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
    cols = _Columns(n)
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


def compute_group(
    group: GroupInput, study: StudyInput, params: MetricParameters
) -> tuple[dict, dict | None]:
    """The metric row of one group, and its agreement row (None without multi-annotated turns)."""
    built = group_columns(group, study, params)
    estimates = bootstrap_columns(
        built.columns, group_rng(params.seed, group.round_index, group.system), params
    )
    return finish_group(built, estimates, params.interval_method)


def finish_group(
    built: GroupColumns, estimates: Mapping[str, Estimate], method: str
) -> tuple[dict, dict | None]:
    """Put the estimates into the group's metric row and agreement row."""
    row, agreement_row, decoder_blocks = built.row, built.agreement, built.decoder
    for name in (
        "success_rate",
        "turns_per_game",
        "click_accuracy",
        "utterance_length",
        "reset_per_100",
        "try_again_per_100",
        "exact_match",
        "positive_feedback",
        "sim",
        "sim_neg_fb",
    ):
        if name in estimates:
            row[name] = _estimate(estimates[name], method)
    if decoder_blocks:
        row["decoder"] = {}
        for kind, block in decoder_blocks.items():
            prefix = f"decoder:{kind}:"
            block["accuracy"] = _estimate(estimates[prefix + "accuracy"], method)
            for measure in ("precision", "recall", "f1"):
                block[measure] = {
                    c: _estimate(estimates[f"{prefix}{measure}:{c}"], method)
                    for c in block["classes"]
                }
            row["decoder"][kind] = block
    if agreement_row is not None:
        for variable in ("correctness", "action", "satisfaction"):
            part = agreement_row[variable]
            for measure in ("percent", "fleiss_kappa", "krippendorff_alpha"):
                key = f"agreement:{variable}:{measure}"
                part[measure] = _estimate(estimates.get(key), method)
    return row, agreement_row


def _annotation_similarity(group: GroupInput, study: StudyInput, ann_game: np.ndarray):
    """(a × K × K) similarities between the context images of each annotation's game."""
    context = np.asarray(group.context, dtype=np.intp)[ann_game]
    if study.similarity is None:
        same = context[:, :, None] == context[:, None, :]
        return same.astype(float)
    matrix = np.asarray(study.similarity, dtype=float)
    return matrix[context[:, :, None], context[:, None, :]]


def _decoder_columns(
    kind, labels, ann_turn, ann_game, weight, satisfaction, n_turns, n, params, cols: _Columns
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
            by: [[_num(v) for v in r] for r in dec.normalize_confusion(matrix, by).tolist()]
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
    group, ann_turn, ann_game, matches, gold_select, gold_deselect, satisfaction, n, cols: _Columns
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
            {"first": p.first, "second": p.second, "items": p.items, "cohen_kappa": _num(p.kappa)}
            for p in agr.pairwise_cohen_kappa(ann_turn[use], raters[use], values[use])
        ]
    return row


def _per_game(item_sums: np.ndarray, item_game: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, item_sums.shape[1]))
    np.add.at(out, item_game, item_sums)
    return out


def _single_threaded_blas():
    """BLAS threads busy-wait; for these many small products one thread is faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def compute_study(
    study: StudyInput,
    params: MetricParameters | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> dict:
    """Every metric of every group: keys study, parameters, similarity, rows, agreement.

    Groups are computed on ``workers`` threads (default: the CPUs available, at most 4); each
    group has its own seeded generator, so the numbers do not depend on the number of threads.
    """
    params = (params or MetricParameters()).validated()
    groups = [
        g
        for g in sorted(study.groups, key=lambda g: (g.round_index, system_sort_key(g.system)))
        if g.n_games > 0
    ]
    workers = max(1, min(4, available_cpus())) if workers is None else max(1, workers)

    def report(done: int, group: GroupInput) -> None:
        if progress is not None:
            message = f"round {group.round_index} · {group.system}: {group.n_games} games"
            progress(done / len(groups), message)

    outcomes: list[tuple[dict, dict | None] | None] = [None] * len(groups)
    with _single_threaded_blas():
        if workers > 1 and len(groups) > 1:
            # Progress is reported from this thread only (callers may write to a database).
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {
                    pool.submit(compute_group, group, study, params): i
                    for i, group in enumerate(groups)
                }
                for done, future in enumerate(as_completed(futures), start=1):
                    index = futures[future]
                    outcomes[index] = future.result()
                    report(done, groups[index])
        else:
            for index, group in enumerate(groups):
                outcomes[index] = compute_group(group, study, params)
                report(index + 1, group)
    return {
        "study": study.name,
        "parameters": params.as_dict(),
        "similarity": study.similarity_label,
        "rows": [outcome[0] for outcome in outcomes if outcome is not None],
        "agreement": [
            outcome[1] for outcome in outcomes if outcome is not None and outcome[1] is not None
        ],
    }
