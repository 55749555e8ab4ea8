"""Tables of a metric run's results: one source for the dashboard, the CSV files and the CLI.

Every table is built from the stored results JSON only, so the dashboard, the CSV downloads and
``compute_metrics`` always show the same numbers. CSV files hold fractions (rates) and plain
numbers; pages show rates as percentages, as the paper does. Captions name the run's metric
conventions (``parameters.conventions``; results without it are the platform's) and, for the
paper's, what differs from the platform's definitions.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from evaluation.stats import conventions as conv
from evaluation.stats.study import IDENTITY_SIMILARITY, system_sort_key


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    percent: bool = False
    digits: int = 2
    estimate: bool = True  # {"value", "ci"} rather than a plain number


INTERACTION = (
    Metric("success_rate", "Success rate", percent=True),
    Metric("turns_per_game", "Turns per game"),
    Metric("click_accuracy", "Click accuracy", percent=True),
)
TURN_LEVEL = (
    Metric("exact_match", "Exact match", percent=True),
    Metric("positive_feedback", "Positive feedback", percent=True),
    Metric("sim", "Sim(â, a*)", percent=True),
    Metric("sim_neg_fb", "Sim(â, a*) −FB", percent=True),
)
LANGUAGE = (
    Metric("vocabulary_size", "Vocabulary size", digits=0, estimate=False),
    Metric("utterance_length", "Utterance length (words)"),
    Metric("reset_phrases", "Reset phrases", digits=0, estimate=False),
    Metric("try_again_phrases", "Try-again phrases", digits=0, estimate=False),
    Metric("reset_per_100", "Reset phrases per 100 utterances"),
    Metric("try_again_per_100", "Try-again phrases per 100 utterances"),
)
METRICS = {m.key: m for m in (*INTERACTION, *TURN_LEVEL, *LANGUAGE)}
SECTIONS = ("success_rate", "turns_per_game", "click_accuracy", "turn_level", "decoder", "language")
SECTION_TITLES = {
    "success_rate": "Success rate by round",
    "turns_per_game": "Turns per game by round",
    "click_accuracy": "Click accuracy by round",
    "turn_level": "Turn-level performance (post-hoc annotations)",
    "decoder": "Feedback decoder against annotated satisfaction",
    "language": "Language of speaker utterances",
}


def sim_label(results: dict) -> str:
    """How Sim is labelled: plain, or saying that no embeddings were available."""
    if results.get("similarity") == IDENTITY_SIMILARITY:
        return f"Sim ({IDENTITY_SIMILARITY})"
    return "Sim"


def metric_label(results: dict, metric: Metric) -> str:
    if metric.key == "utterance_length":
        per_turn = conventions_of(results).length_per == conv.PER_TURN
        return "Utterance length (tokens per turn)" if per_turn else metric.label
    if metric.key in ("sim", "sim_neg_fb"):
        name = "Sim(â, a*)" + (" −FB" if metric.key == "sim_neg_fb" else "")
        if results.get("similarity") == IDENTITY_SIMILARITY:
            return f"{name} ({IDENTITY_SIMILARITY})"
        return name
    return metric.label


def confidence_label(results: dict) -> str:
    return f"{100 * results.get('parameters', {}).get('confidence', 0.95):g}%"


# Conventions ---------------------------------------------------------------------------------

METHOD_NAMES = {"bca": "BCa", "percentile": "percentile"}
CONVENTION_TITLES = {
    "platform": "Platform conventions",
    "paper": "Paper conventions (ReSpect study)",
}
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "turn_level": ("positive_answers", "sim_neg_fb"),
    "positive_feedback": ("positive_answers",),
    "sim_neg_fb": ("sim_neg_fb",),
    "language": ("tokens", "length_per"),
    "vocabulary_size": ("tokens",),
    "utterance_length": ("tokens", "length_per"),
}
"""The convention fields (besides the interval method) that the numbers of a section or of one
metric depend on; any other section or metric depends on the interval method only."""
_RUN_FIELDS = ("positive_answers", "sim_neg_fb", "tokens", "length_per")
_PLATFORM_TEXT = {
    "positive_answers": "any yes…",
    "sim_neg_fb": "turns with negative feedback",
    "tokens": "whitespace-separated words",
    "length_per": "per non-empty utterance",
}


def conventions_of(results: dict) -> conv.Conventions:
    """The conventions a run's results were computed under (older results: the platform's)."""
    return conv.conventions_named(results.get("parameters", {}).get("conventions", "platform"))


def interval_method(results: dict) -> str:
    """The run's interval method (its parameters', else its conventions' default)."""
    return results.get("parameters", {}).get("method") or conventions_of(results).interval


def _answers_text(answers: Sequence[str]) -> str:
    if set(answers) == set(conv.PLATFORM.positive_answers):
        return "any yes… answer"
    if tuple(answers) == ("yes",):
        return "a plain yes only"
    return " or ".join(answers)


def _field_text(conventions: conv.Conventions, name: str) -> str:
    """How ``conventions`` defines one field, in words."""
    if name == "positive_answers":
        return "positive feedback counts " + _answers_text(conventions.positive_answers)
    if name == "sim_neg_fb":
        if conventions.sim_neg_fb == conv.SIM_NEG_FB_NEGATIVE:
            return "Sim −FB averages over turns with negative feedback"
        if tuple(conventions.positive_answers) == ("yes",):
            return "Sim −FB averages over turns answered anything but a plain yes"
        return "Sim −FB averages over turns without positive feedback"
    if name == "tokens":
        if conventions.tokens == conv.ALPHANUMERIC:
            return "vocabulary and utterance length count alphanumeric tokens [a-z0-9]+"
        return "vocabulary and utterance length count whitespace-separated words"
    if name == "length_per":
        unit = "turn" if conventions.length_per == conv.PER_TURN else "non-empty utterance"
        return f"utterance length is tokens per {unit}"
    raise KeyError(name)


def convention_differences(
    results: dict, section: str | None = None, *, intervals: bool = True
) -> list[str]:
    """What of the numbers of a section or metric (the whole run's if None) differs from the
    platform's definitions under the run's conventions: one phrase each, the platform's in
    parentheses. ``intervals`` False: numbers without intervals (counts), so no interval phrase.
    """
    conventions = conventions_of(results)
    fields = _RUN_FIELDS if section is None else SECTION_FIELDS.get(section, ())
    differences = [
        f"{_field_text(conventions, name)} (platform: {_PLATFORM_TEXT[name]})"
        for name in fields
        if getattr(conventions, name) != getattr(conv.PLATFORM, name)
    ]
    method = interval_method(results)
    if intervals and method != conv.PLATFORM.interval:
        platform = METHOD_NAMES[conv.PLATFORM.interval]
        differences.append(f"{METHOD_NAMES[method]} bootstrap intervals (platform: {platform})")
    return differences


def conventions_caption(
    results: dict, section: str | None = None, *, intervals: bool = True
) -> str:
    """Which conventions a table or figure (of a section or one metric; None: the whole run)
    uses and, where they are not the platform's, what differs from the platform's definitions.
    """
    conventions = conventions_of(results)
    title = CONVENTION_TITLES.get(conventions.name, f"{conventions.name} conventions")
    differences = convention_differences(results, section, intervals=intervals)
    if differences:
        return f"{title}; differs from the platform's definitions: {'; '.join(differences)}."
    method = f", {confidence_label(results)} {METHOD_NAMES[interval_method(results)]} intervals"
    same = "the platform's" if conventions == conv.PLATFORM else "here the same as the platform's"
    return f"{title}: {same} definitions{method if intervals else ''}."


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


def fmt_ci(estimate: dict | None, metric: Metric) -> str:
    if not estimate:
        return ""
    low, high = estimate.get("ci") or (None, None)
    if low is None or high is None:
        return ""
    return f"[{fmt(low, metric)}, {fmt(high, metric)}]"


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
            if row is None or value is None:
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
    for metric in TURN_LEVEL:
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


# CSV -----------------------------------------------------------------------------------------


def _csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def _estimate_columns(estimate: dict | None) -> list:
    if not estimate:
        return [None, None, None]
    low, high = estimate.get("ci") or (None, None)
    return [estimate.get("value"), low, high]


def metric_csv(results: dict, keys: Sequence[str]) -> str:
    """Long format: one line per round × system × metric (value and interval)."""
    lines = []
    for row in rows_sorted(results.get("rows", [])):
        for key in keys:
            metric = METRICS[key]
            value = row.get(key)
            if value is None:
                continue
            columns = _estimate_columns(value) if metric.estimate else [value, None, None]
            lines.append([row["round"], row["system"], row["games"], key, *columns])
    return _csv(["round", "system", "games", "metric", "value", "ci_low", "ci_high"], lines)


def decoder_csv(results: dict) -> str:
    lines = []
    for panel in decoder_panels(results):
        for i, reference in enumerate(panel["classes"]):
            for j, predicted in enumerate(panel["columns"]):
                lines.append(
                    [
                        panel["round"],
                        panel["system"],
                        panel["kind"],
                        panel["decoder"],
                        reference,
                        predicted,
                        panel["confusion"][i][j],
                        panel["normalized"]["total"][i][j],
                        panel["normalized"]["row"][i][j],
                        panel["normalized"]["column"][i][j],
                    ]
                )
    return _csv(
        [
            "round",
            "system",
            "kind",
            "decoder",
            "reference",
            "predicted",
            "count",
            "fraction_of_total",
            "fraction_of_row",
            "fraction_of_column",
        ],
        lines,
    )


def decoder_summary_csv(results: dict) -> str:
    lines = []
    for panel in decoder_panels(results):
        head = [panel["round"], panel["system"], panel["kind"], panel["decoder"], panel["items"]]
        lines.append([*head, "accuracy", "", *_estimate_columns(panel["accuracy"])])
        for measure in ("precision", "recall", "f1"):
            for name in panel["classes"]:
                lines.append([*head, measure, name, *_estimate_columns(panel[measure][name])])
    return _csv(
        [
            "round",
            "system",
            "kind",
            "decoder",
            "items",
            "measure",
            "class",
            "value",
            "ci_low",
            "ci_high",
        ],
        lines,
    )


AGREEMENT_VARIABLES = ("correctness", "action", "satisfaction")


def agreement_csv(results: dict) -> str:
    lines = []
    for row in results.get("agreement", []):
        for variable in AGREEMENT_VARIABLES:
            part = row.get(variable) or {}
            lines.append(
                [
                    results.get("study"),
                    row["round"],
                    row["system"],
                    variable,
                    part.get("items", 0),
                    row.get("annotators"),
                    *_estimate_columns(part.get("percent")),
                    part.get("fleiss_items", 0),
                    *_estimate_columns(part.get("fleiss_kappa")),
                    *_estimate_columns(part.get("krippendorff_alpha")),
                ]
            )
    return _csv(
        [
            "study",
            "round",
            "system",
            "variable",
            "items",
            "annotators",
            "percent_agreement",
            "percent_ci_low",
            "percent_ci_high",
            "fleiss_items",
            "fleiss_kappa",
            "fleiss_ci_low",
            "fleiss_ci_high",
            "krippendorff_alpha",
            "alpha_ci_low",
            "alpha_ci_high",
        ],
        lines,
    )


def agreement_pairs_csv(results: dict) -> str:
    lines = []
    for row in results.get("agreement", []):
        for variable in AGREEMENT_VARIABLES:
            for pair in (row.get(variable) or {}).get("pairs", []):
                lines.append(
                    [
                        results.get("study"),
                        row["round"],
                        row["system"],
                        variable,
                        pair["first"],
                        pair["second"],
                        pair["items"],
                        pair["cohen_kappa"],
                    ]
                )
    return _csv(
        [
            "study",
            "round",
            "system",
            "variable",
            "annotator_a_hash",
            "annotator_b_hash",
            "items",
            "cohen_kappa",
        ],
        lines,
    )


SCALARS = (
    "games",
    "successful_games",
    "turns",
    "clicks",
    "correct_clicks",
    "utterances",
    "vocabulary_size",
    "reset_phrases",
    "try_again_phrases",
    "annotated_turns",
    "annotations",
    "negative_feedback_turns",
)
ESTIMATES = (
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
)


def all_metrics_csv(results: dict) -> str:
    """Every metric of every group on one line (wide), decoder summaries included."""
    decoder_columns: list[str] = []
    for panel in decoder_panels(results):
        names = ["accuracy"] + [
            f"{m}_{c}" for m in ("precision", "recall", "f1") for c in panel["classes"]
        ]
        for name in names:
            column = f"decoder_{panel['kind']}_{name}"
            if column not in decoder_columns:
                decoder_columns.append(column)
    header = ["study", "round", "system", *SCALARS]
    for key in ESTIMATES:
        header += [key, f"{key}_ci_low", f"{key}_ci_high"]
    for column in decoder_columns:
        header += [column, f"{column}_ci_low", f"{column}_ci_high"]
    header += ["similarity", "conventions"]
    conventions = conventions_of(results).name
    lines = []
    for row in rows_sorted(results.get("rows", [])):
        line = [results.get("study"), row["round"], row["system"]]
        line += [row.get(key) for key in SCALARS]
        for key in ESTIMATES:
            line += _estimate_columns(row.get(key))
        decoder = row.get("decoder") or {}
        for column in decoder_columns:
            _, kind, name = column.split("_", 2)
            block = decoder.get(kind)
            if block is None:
                line += [None, None, None]
            elif name == "accuracy":
                line += _estimate_columns(block["accuracy"])
            else:
                measure, cls = name.split("_", 1)
                line += _estimate_columns(block[measure].get(cls))
        line += [row.get("similarity", ""), conventions]
        lines.append(line)
    return _csv(header, lines)


def section_csv(results: dict, section: str) -> str:
    if section in ("success_rate", "turns_per_game", "click_accuracy"):
        return metric_csv(results, [section])
    if section == "turn_level":
        return metric_csv(results, [m.key for m in TURN_LEVEL])
    if section == "language":
        return metric_csv(results, [m.key for m in LANGUAGE])
    if section == "decoder":
        return decoder_csv(results)
    raise KeyError(section)


# Terminal ------------------------------------------------------------------------------------


def text_table(results: dict) -> str:
    """The CLI's table: one line per round × system."""
    rows = rows_sorted(results.get("rows", []))
    annotated = any(r.get("exact_match") for r in rows)
    columns: list[tuple[str, Callable[[dict], str]]] = [
        ("round", lambda r: str(r["round"])),
        ("system", lambda r: r["system"]),
        ("games", lambda r: str(r["games"])),
    ]

    def est(key):
        metric = METRICS[key]
        return lambda r: (
            f"{fmt(r[key]['value'], metric)} {fmt_ci(r[key], metric)}" if r.get(key) else "–"
        )

    columns += [
        ("success %", est("success_rate")),
        ("turns/game", est("turns_per_game")),
        ("click acc %", est("click_accuracy")),
        ("utt. length", est("utterance_length")),
        ("vocab", lambda r: str(r["vocabulary_size"])),
        ("reset", lambda r: str(r["reset_phrases"])),
        ("try again", lambda r: str(r["try_again_phrases"])),
    ]
    if annotated:
        columns += [
            ("exact match %", est("exact_match")),
            ("pos. feedback %", est("positive_feedback")),
            (f"{sim_label(results)} %", est("sim")),
            (f"{sim_label(results)} -FB %", est("sim_neg_fb")),
        ]
    cells = [[name for name, _ in columns]] + [[f(r) for _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    text = "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
    params = results.get("parameters", {})
    footer = (
        f"\n{params.get('resamples')} resamples, seed {params.get('seed')}, "
        f"{100 * params.get('confidence', 0.95):g}% {interval_method(results)} intervals"
        f"\n{conventions_caption(results)}"
    )
    return text + footer
