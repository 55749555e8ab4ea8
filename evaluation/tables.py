"""Tables of a metric run's results, for the dashboard and the command line, and their labels.

Every table is built from the stored results JSON only, so the dashboard, the CSV files
(``evaluation.csv_exports``) and ``compute_metrics`` (``evaluation.terminal``) always show the
same numbers. Pages show rates as percentages, as the paper does; which metrics there are, and
how each is shown, is the registry's (``evaluation.stats.metrics``). Captions name the run's
metric conventions (``evaluation.captions``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from evaluation.captions import conventions_caption, conventions_of
from evaluation.stats import conventions as conv
from evaluation.stats.inputs import IDENTITY_SIMILARITY, system_sort_key
from evaluation.stats.metrics import Metric, section_metrics

SIM_RANGE = (
    "Sim(â, a*) compares the listener's action â with the annotated intended action a* "
    "(the paper's eq. 3): the mean similarity of the images â and a* select (and deselect), "
    "where a part that only one of them has counts −1 per click. It runs from −100% to 100%: "
    "it is negative when the listener selected (or deselected) images while the annotator "
    "would have done none of that, or did nothing where the annotator would have clicked "
    "(with embeddings, also when the clicked images are dissimilar)."
)
"""What Sim measures and why it can be negative, wherever Sim is shown."""


def sim_label(results: dict) -> str:
    """How Sim is labelled: plain, or saying that no embeddings were available."""
    if results.get("similarity") == IDENTITY_SIMILARITY:
        return f"Sim ({IDENTITY_SIMILARITY})"
    return "Sim"


def metric_label(results: dict, metric: Metric) -> str:
    """A metric's label under the run's conventions and similarity (the registry's otherwise)."""
    if metric.key == "utterance_length":
        per_turn = conventions_of(results).length_per == conv.PER_TURN
        return "Utterance length (tokens per turn)" if per_turn else metric.label
    if metric.key in ("sim", "sim_neg_fb") and results.get("similarity") == IDENTITY_SIMILARITY:
        return f"{metric.label} ({IDENTITY_SIMILARITY})"
    return metric.label


def fmt(value, metric: Metric | None = None, *, percent: bool | None = None, digits=None) -> str:
    """A number for people: percentages for rates, '–' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    as_percent = metric.percent if percent is None and metric else bool(percent)
    places = digits if digits is not None else (metric.digits if metric else 2)
    if as_percent:
        return f"{100 * value:.1f}"
    if places == 0:
        return (
            f"{value:,.0f}"
            if isinstance(value, int) or float(value).is_integer()
            else (f"{value:,.2f}")
        )
    return f"{value:.{places}f}"


def fmt_ci(
    estimate: dict | None, metric: Metric | None = None, *, percent: bool | None = None
) -> str:
    """An estimate's interval for people, ``[low, high]`` as ``fmt`` writes numbers ('' if none)."""
    if not estimate:
        return ""
    low, high = estimate.get("ci") or (None, None)
    if low is None or high is None:
        return ""
    return f"[{fmt(low, metric, percent=percent)}, {fmt(high, metric, percent=percent)}]"


def rows_sorted(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["round"], system_sort_key(r["system"])))


def rounds_and_systems(rows: Sequence[dict], key: str | None = None):
    """Rounds and systems (paper order) that have a value for ``key`` (any, if None)."""
    chosen = [r for r in rows if key is None or r.get(key) is not None]
    rounds = sorted({r["round"] for r in chosen})
    systems = sorted({r["system"] for r in chosen}, key=system_sort_key)
    return rounds, systems


@dataclass
class Cell:
    text: str = ""
    ci: str = ""
    title: str = ""


@dataclass
class Pivot:
    """A systems × rounds table of one metric (as the paper's appendix tables)."""

    metric: Metric
    label: str
    rounds: list[int]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    caption: str = ""  # the conventions of these numbers (``conventions_caption``)


def pivot(results: dict, metric: Metric) -> Pivot:
    rows = results.get("rows", [])
    rounds, systems = rounds_and_systems(rows, metric.key)
    by_key = {(r["round"], r["system"]): r for r in rows}
    caption = conventions_caption(results, metric.key, intervals=metric.estimate)
    table = Pivot(metric, metric_label(results, metric), rounds, caption=caption)
    for system in systems:
        cells = []
        for round_index in rounds:
            row = by_key.get((round_index, system))
            value = None if row is None else row.get(metric.key)
            if value is None:
                cells.append(Cell("–"))
            elif metric.estimate:
                games = f"{row['games']} games"
                cells.append(Cell(fmt(value["value"], metric), fmt_ci(value, metric), games))
            else:
                cells.append(Cell(fmt(value, metric), "", f"{row['games']} games"))
        table.rows.append((system, cells))
    return table


def turn_level_table(results: dict) -> tuple[list[str], list[tuple[str, list[Cell]]]]:
    """Metrics × groups with annotations (the paper's Table 5)."""
    groups = [r for r in rows_sorted(results.get("rows", [])) if r.get("exact_match")]
    header = [f"ρ={r['round']} · {r['system']}" for r in groups]
    body = []
    for metric in section_metrics("turn_level"):
        cells = []
        for row in groups:
            value = row.get(metric.key)
            cells.append(
                Cell(fmt(value["value"], metric), fmt_ci(value, metric))
                if value and value.get("value") is not None
                else Cell("–")
            )
        body.append((metric_label(results, metric), cells))
    body.append(("Annotated turns", [Cell(str(r.get("annotated_turns", ""))) for r in groups]))
    return header, body


def decoder_panels(results: dict) -> list[dict]:
    """One entry per round × system × label kind with a decoder block."""
    panels = []
    for row in rows_sorted(results.get("rows", [])):
        for kind, block in sorted((row.get("decoder") or {}).items()):
            panels.append({"round": row["round"], "system": row["system"], "kind": kind, **block})
    return panels
