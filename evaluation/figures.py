"""Paper-ready figures of a metric run (SVG and PDF), drawn from the stored results only.

matplotlib is imported here, lazily, and only its object-oriented API is used (``Figure`` with
the Agg canvas; no pyplot state), so figures can be drawn in any web or worker thread. Text is
kept as text in SVG and as TrueType in PDF, and the files carry no creation date, so the same
results always give the same bytes. Every figure ends with a caption line naming the run's metric
conventions (and, for the paper's, what differs from the platform's definitions).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from evaluation import captions, tables
from evaluation.stats.conventions import SIM_NEG_FB_NEGATIVE
from evaluation.stats.inputs import system_sort_key
from evaluation.stats.metrics import INTERACTION, METRICS

FORMATS = {"svg": "image/svg+xml", "pdf": "application/pdf"}
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
NORMALIZATIONS = ("total", "row", "column", "counts")
SIM_RANGE_NOTE = "Sim: −100% to 100%; below 0 when only â or only a* clicks"
LANGUAGE_PANELS = ("vocabulary_size", "utterance_length", "reset_per_100", "try_again_per_100")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def render(figure, fmt: str) -> bytes:
    """The figure as SVG or PDF bytes (deterministic)."""
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {sorted(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None}
    with matplotlib.rc_context(
        {"svg.hashsalt": "respect", "svg.fonttype": "none", "pdf.fonttype": 42}
    ):
        figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def _colors(systems: Sequence[str]) -> dict[str, str]:
    ordered = sorted(set(systems), key=system_sort_key)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(ordered)}


def _series(rows: Sequence[dict], key: str, scale: float):
    """Per system: rounds, values, lower and upper bounds of ``key``."""
    series: dict[str, tuple[list, list, list, list]] = {}
    for row in tables.rows_sorted(rows):
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, dict):
            if value.get("value") is None:
                continue
            low, high = value.get("ci") or (None, None)
            point = value["value"]
        else:
            point, low, high = value, None, None
        rounds, values, lows, highs = series.setdefault(row["system"], ([], [], [], []))
        rounds.append(row["round"])
        values.append(point * scale)
        lows.append(point * scale if low is None else low * scale)
        highs.append(point * scale if high is None else high * scale)
    return series


def deployed_runs(rounds: Sequence[int], study_rounds: Sequence[int]) -> list[list[int]]:
    """Positions in ``rounds`` (a system's rounds, ascending) split into runs of rounds that
    follow each other among ``study_rounds``: a line joins a system's points only across rounds
    it was deployed in, never across a round it missed."""
    order = {round_index: i for i, round_index in enumerate(sorted(set(study_rounds)))}
    runs: list[list[int]] = []
    for position, round_index in enumerate(rounds):
        if runs and order[round_index] == order[rounds[runs[-1][-1]]] + 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _plot_by_round(
    axes, rows, key: str, *, percent: bool, ylabel: str, colors, dashed: bool = False, suffix=""
) -> None:
    scale = 100.0 if percent else 1.0
    study_rounds = sorted({row["round"] for row in rows})
    for system, (rounds, values, lows, highs) in _series(rows, key, scale).items():
        color = colors[system]
        label = system + suffix
        for run in deployed_runs(rounds, study_rounds):
            xs = [rounds[i] for i in run]
            ys = [values[i] for i in run]
            if len(run) == 1:
                i = run[0]
                axes.errorbar(
                    xs,
                    ys,
                    yerr=[[values[i] - lows[i]], [highs[i] - values[i]]],
                    fmt="s" if dashed else "o",
                    color=color,
                    capsize=3,
                    label=label,
                    mfc="white" if dashed else color,
                )
            else:
                axes.plot(
                    xs,
                    ys,
                    "--" if dashed else "-",
                    marker="o",
                    color=color,
                    label=label,
                    mfc="white" if dashed else color,
                )
                axes.fill_between(
                    xs,
                    [lows[i] for i in run],
                    [highs[i] for i in run],
                    color=color,
                    alpha=0.1 if dashed else 0.18,
                    linewidth=0,
                )
            label = "_" + label  # one legend entry per system, however many runs it has
    axes.set_xlabel("Round ρ")
    axes.set_ylabel(ylabel)
    if study_rounds:
        axes.set_xticks(study_rounds)
        axes.set_xlim(study_rounds[0] - 0.5, study_rounds[-1] + 0.5)
    axes.grid(alpha=0.3)


def by_round_figure(results: dict, key: str):
    """One metric by round for every system, with the interval as a band (paper Figure 4)."""
    metric = METRICS[key]
    rows = results.get("rows", [])
    figure = _figure(6.0, 3.6)
    axes = figure.add_subplot()
    colors = _colors([r["system"] for r in rows])
    ylabel = tables.metric_label(results, metric) + (" (%)" if metric.percent else "")
    _plot_by_round(axes, rows, key, percent=metric.percent, ylabel=ylabel, colors=colors)
    confidence = results.get("parameters", {}).get("confidence", 0.95)
    axes.set_title(f"{tables.metric_label(results, metric)} ({100 * confidence:g}% intervals)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def turn_level_figure(results: dict):
    """Exact match, Sim (and Sim −FB) and positive feedback by round (paper Figure 5)."""
    rows = [r for r in results.get("rows", []) if r.get("exact_match")]
    figure = _figure(10.0, 3.4)
    panels = figure.subplots(1, 3)
    colors = _colors([r["system"] for r in rows])
    _plot_by_round(
        panels[0], rows, "exact_match", percent=True, ylabel="Exact match (%)", colors=colors
    )
    _plot_by_round(panels[1], rows, "sim", percent=True, ylabel="Sim(â, a*) (%)", colors=colors)
    _plot_by_round(
        panels[1],
        rows,
        "sim_neg_fb",
        percent=True,
        ylabel="Sim(â, a*) (%)",
        colors=colors,
        dashed=True,
        suffix=" −FB",
    )
    _plot_by_round(
        panels[2],
        rows,
        "positive_feedback",
        percent=True,
        ylabel="Positive feedback (%)",
        colors=colors,
    )
    panels[1].axhline(0, color="#666666", linewidth=0.8)
    paper_sim = captions.conventions_of(results).sim_neg_fb != SIM_NEG_FB_NEGATIVE
    panels[1].set_title(
        ("dashed: turns without a plain yes" if paper_sim else "dashed: negative-feedback turns")
        + ("" if tables.sim_label(results) == "Sim" else "\nidentity similarity: no embeddings")
        + "\n"
        + SIM_RANGE_NOTE,
        fontsize="small",
    )
    handles, labels = panels[1].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right center", frameon=False)
    return figure


def decoder_figure(results: dict, normalize: str = "total"):
    """Confusion matrices by round × system, one row of heatmaps per label kind (Figure 6)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}")
    panels = tables.decoder_panels(results)
    kinds = [k for k in ("binary", "ternary") if any(p["kind"] == k for p in panels)]
    groups = sorted(
        {(p["round"], p["system"]) for p in panels},
        key=lambda g: (g[0], system_sort_key(g[1])),
    )
    figure = _figure(*decoder_figure_size(panels, len(groups), kinds))
    if not panels:
        return figure
    grid = figure.subplots(len(kinds), len(groups), squeeze=False)
    by_key = {(p["kind"], p["round"], p["system"]): p for p in panels}
    for i, kind in enumerate(kinds):
        for j, (round_index, system) in enumerate(groups):
            axes = grid[i][j]
            panel = by_key.get((kind, round_index, system))
            if panel is None:
                axes.set_axis_off()
                continue
            _heatmap(axes, panel, normalize)
            axes.set_title(f"{kind} · ρ={round_index} · {system}", fontsize="small")
    return figure


def decoder_figure_size(panels: Sequence[dict], groups: int, kinds: Sequence[str]):
    """Width and height (inches) that fit the heatmaps: a column per decoder label and a row per
    annotated class in each panel, panels side by side per group and stacked per label kind."""
    columns = max((len(p["columns"]) for p in panels), default=2)
    classes = {k: max(len(p["classes"]) for p in panels if p["kind"] == k) for k in kinds}
    width = 1.3 + 0.62 * columns
    heights = [1.5 + 0.45 * classes[k] for k in kinds] or [2.0]
    return round(max(1, groups) * width, 2), round(sum(heights) + 0.5, 2)


def _heatmap(axes, panel: dict, normalize: str) -> None:
    import numpy as np

    counts = np.array(panel["confusion"], dtype=float)
    columns = list(panel["columns"])
    if not counts[:, -1].any():  # no unparseable answers: leave the column out
        counts, columns = counts[:, :-1], columns[:-1]
    if normalize == "counts":
        shown = counts
    else:
        values = np.array(panel["normalized"][normalize], dtype=float)[:, : counts.shape[1]]
        shown = np.nan_to_num(values, nan=0.0)
    axes.imshow(shown, cmap="Blues", vmin=0, vmax=max(float(shown.max()), 1e-9))
    for (r, c), value in np.ndenumerate(shown):
        text = f"{value:g}" if normalize == "counts" else f"{100 * value:.0f}%"
        dark = value > 0.6 * shown.max()
        axes.text(
            c,
            r,
            text,
            ha="center",
            va="center",
            fontsize="small",
            color="white" if dark else "black",
        )
    axes.set_xticks(range(len(columns)), columns, fontsize="small", rotation=30, ha="right")
    axes.set_yticks(range(len(panel["classes"])), panel["classes"], fontsize="small")
    axes.set_xlabel("decoder")
    axes.set_ylabel("annotated")


def language_figure(results: dict):
    """Vocabulary size, utterance length, and reset and try-again phrases per 100 utterances by
    round, with intervals where the tables have them (Figure 7)."""
    rows = results.get("rows", [])
    figure = _figure(8.0, 5.0)
    grid = figure.subplots(2, 2)
    colors = _colors([r["system"] for r in rows])
    for axes, key in zip(grid.ravel(), LANGUAGE_PANELS, strict=True):
        metric = METRICS[key]
        label = tables.metric_label(results, metric)
        ylabel = label.replace(" (", "\n(").replace(" per 100", "\nper 100")  # small panels
        _plot_by_round(axes, rows, key, percent=False, ylabel=ylabel, colors=colors)
    handles, labels = grid[0][0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right center", frameon=False)
    return figure


def add_caption(figure, results: dict, section: str) -> None:
    """The conventions caption of ``section`` as a small line (wrapped) under the figure."""
    width = max(40, int(figure.get_figwidth() * 16))
    caption = textwrap.fill(captions.conventions_caption(results, section), width)
    figure.supxlabel(caption, fontsize="x-small", color="#444444")


def section_figure(results: dict, section: str, normalize: str = "total"):
    """The figure of one dashboard section, captioned with the run's conventions."""
    if section in (m.key for m in INTERACTION):
        figure = by_round_figure(results, section)
    elif section == "turn_level":
        figure = turn_level_figure(results)
    elif section == "decoder":
        figure = decoder_figure(results, normalize)
    elif section == "language":
        figure = language_figure(results)
    else:
        raise KeyError(section)
    add_caption(figure, results, section)
    return figure
