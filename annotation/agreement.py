"""Inter-annotator agreement on turns annotated by several workers (pure; no ORM).

An *item* is one turn; each rating is one worker's answer. Three dimensions, as in the paper's
appendix A.2 and docs/metrics.md ("Agreement between annotators"): correctness (whether the
worker's a* equals the listener's action), the exact action a*, and satisfaction (turns with a
follow-up only). For each: percent of items on which all raters agree, Fleiss' κ (statsmodels;
items with the most common number of raters, since it needs a fixed count) and Krippendorff's α
(nominal; any number of raters per item); and Cohen's κ for every pair of raters who rated
common items.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

import krippendorff
import numpy as np
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa


@dataclass(frozen=True)
class Rating:
    rater: str
    action: str
    listener_action: str
    satisfaction: str

    @property
    def correct(self) -> bool:
        return self.action == self.listener_action


@dataclass(frozen=True)
class PairStats:
    raters: tuple[str, str]
    items: int
    cohen_kappa: float | None


@dataclass(frozen=True)
class DimensionStats:
    items: int
    percent_all_agree: float | None
    fleiss_kappa: float | None
    fleiss_items: int
    krippendorff_alpha: float | None
    pairs: tuple[PairStats, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "items": self.items,
            "percent_all_agree": self.percent_all_agree,
            "fleiss_kappa": self.fleiss_kappa,
            "fleiss_items": self.fleiss_items,
            "krippendorff_alpha": self.krippendorff_alpha,
            "cohen_kappa_pairs": [
                {"raters": list(p.raters), "items": p.items, "cohen_kappa": p.cohen_kappa}
                for p in self.pairs
            ],
        }


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def dimension_stats(items: Sequence[Sequence[tuple[str, Hashable]]]) -> DimensionStats:
    """Agreement on one nominal dimension; each item is a list of (rater, category)."""
    items = [item for item in items if len(item) >= 2]
    if not items:
        return DimensionStats(0, None, None, 0, None)
    all_agree = sum(1 for item in items if len({c for _, c in item}) == 1)
    categories = sorted({c for item in items for _, c in item}, key=repr)
    code = {c: i for i, c in enumerate(categories)}

    modal_count = Counter(len(item) for item in items).most_common(1)[0][0]
    fixed = [item for item in items if len(item) == modal_count]
    table, _ = aggregate_raters(
        np.array([[code[c] for _, c in item] for item in fixed]), n_cat=len(categories)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = _finite(fleiss_kappa(table, method="fleiss"))

    raters = sorted({r for item in items for r, _ in item})
    row = {r: i for i, r in enumerate(raters)}
    data = np.full((len(raters), len(items)), np.nan)
    for column, item in enumerate(items):
        for rater, category in item:
            data[row[rater], column] = code[category]
    alpha: float | None
    if len(categories) < 2:
        alpha = None
    else:
        alpha = _finite(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return DimensionStats(
        len(items), all_agree / len(items), kappa, len(fixed), alpha, pair_stats(items, code)
    )


def pair_stats(
    items: Sequence[Sequence[tuple[str, Hashable]]], code: dict[Hashable, int]
) -> tuple[PairStats, ...]:
    """Cohen's κ (statsmodels) for each pair of raters over the items both rated."""
    shared: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for item in items:
        ratings = dict(item)
        for first, second in combinations(sorted(ratings), 2):
            shared.setdefault((first, second), []).append(
                (code[ratings[first]], code[ratings[second]])
            )
    pairs = []
    for raters, codes in sorted(shared.items()):
        table = np.zeros((len(code), len(code)))
        for a, b in codes:
            table[a, b] += 1
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            kappa = _finite(cohens_kappa(table).kappa)
        pairs.append(PairStats(raters, len(codes), kappa))
    return tuple(pairs)


def agreement(items: Sequence[Sequence[Rating]]) -> dict[str, DimensionStats]:
    """Correctness, exact-action and satisfaction agreement over items with ≥ 2 ratings."""
    return {
        "correctness": dimension_stats([[(r.rater, r.correct) for r in item] for item in items]),
        "action": dimension_stats([[(r.rater, r.action) for r in item] for item in items]),
        "satisfaction": dimension_stats(
            [[(r.rater, r.satisfaction) for r in item if r.satisfaction] for item in items]
        ),
    }
