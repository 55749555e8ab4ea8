"""Inter-annotator agreement of a batch, as the admin export reports it (pure; no ORM).

An *item* is one turn; each rating is one worker's answer. Three dimensions (see
docs/metrics.md): correctness (whether the worker's a* equals the listener's action), the exact
action a*, and satisfaction (turns with a follow-up only). For each: percent of items on which
all raters agree, Fleiss' κ (items with the most common number of raters, since it needs a fixed
count), Krippendorff's α (nominal; any number of raters per item) and Cohen's κ for every pair
of raters who rated common items.

The numbers come from ``evaluation.stats.agreement``, the one implementation the dashboards'
bootstrap also uses; statsmodels, krippendorff and scikit-learn check it in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from evaluation.stats import agreement as stats


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


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def dimension_stats(items: Sequence[Sequence[tuple[str, Hashable]]]) -> DimensionStats:
    """Agreement on one nominal dimension; each item is a list of (rater, category)."""
    items = [item for item in items if len(item) >= 2]
    if not items:
        return DimensionStats(0, None, None, 0, None)
    item_ids = [index for index, item in enumerate(items) for _ in item]
    raters = [rater for item in items for rater, _ in item]
    values = [category for item in items for _, category in item]
    counts = stats.rating_table(item_ids, values).counts
    alpha = stats.krippendorff_alpha_nominal(counts) if counts.shape[1] >= 2 else None
    pairs = tuple(
        PairStats((pair.first, pair.second), pair.items, _finite(pair.kappa))
        for pair in stats.pairwise_cohen_kappa(item_ids, raters, values)
    )
    return DimensionStats(
        items=len(items),
        percent_all_agree=_finite(stats.percent_agreement(counts)),
        fleiss_kappa=_finite(stats.fleiss_kappa(counts)),
        fleiss_items=int(stats.fleiss_items(counts).sum()),
        krippendorff_alpha=_finite(alpha),
        pairs=pairs,
    )


def agreement(items: Sequence[Sequence[Rating]]) -> dict[str, DimensionStats]:
    """Correctness, exact-action and satisfaction agreement over items with ≥ 2 ratings."""
    return {
        "correctness": dimension_stats([[(r.rater, r.correct) for r in item] for item in items]),
        "action": dimension_stats([[(r.rater, r.action) for r in item] for item in items]),
        "satisfaction": dimension_stats(
            [[(r.rater, r.satisfaction) for r in item if r.satisfaction] for item in items]
        ),
    }
