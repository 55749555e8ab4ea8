"""CSV files of a metric run's results (section tables, decoder, agreement, every metric).

Built from the stored results JSON only, like the dashboard's tables; CSV files hold fractions
(rates) and plain numbers, never percentages; text cells that a spreadsheet would take for a
formula are escaped (``config.csv_cells``). A file without data lines ends with a comment line
saying why (``explain_if_empty``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from config.csv_cells import SafeWriter
from evaluation.captions import conventions_of
from evaluation.stats.decoder import CLASS_MEASURES
from evaluation.stats.metrics import (
    AGREEMENT_VARIABLES,
    ANNOTATION_COUNTS,
    COUNTED,
    ESTIMATED,
    GROUP_COUNTS,
    METRICS,
    section_metrics,
)
from evaluation.tables import decoder_panels, rows_sorted


def _csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer, lineterminator="\n")
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
        for measure in CLASS_MEASURES:
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


SCALARS = (*GROUP_COUNTS, *COUNTED, *ANNOTATION_COUNTS)
"""The plain numbers of a row, in the wide CSV file's column order."""


def all_metrics_csv(results: dict) -> str:
    """Every metric of every group on one line (wide), decoder summaries included."""
    decoder_columns: list[str] = []
    for panel in decoder_panels(results):
        names = ["accuracy"] + [f"{m}_{c}" for m in CLASS_MEASURES for c in panel["classes"]]
        for name in names:
            column = f"decoder_{panel['kind']}_{name}"
            if column not in decoder_columns:
                decoder_columns.append(column)
    header = ["study", "round", "system", *SCALARS]
    for key in ESTIMATED:
        header += [key, f"{key}_ci_low", f"{key}_ci_high"]
    for column in decoder_columns:
        header += [column, f"{column}_ci_low", f"{column}_ci_high"]
    header += ["similarity", "conventions"]
    conventions = conventions_of(results).name
    lines = []
    for row in rows_sorted(results.get("rows", [])):
        line = [results.get("study"), row["round"], row["system"]]
        line += [row.get(key) for key in SCALARS]
        for key in ESTIMATED:
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
    """The CSV file of a dashboard section: its metrics (long format), or the decoder's matrices."""
    if section == "decoder":
        return decoder_csv(results)
    return metric_csv(results, [m.key for m in section_metrics(section)])


_NO_AGREEMENT = (
    "No turn of this metric run has several annotators, so there is no agreement to export: "
    "give an annotation batch a redundancy fraction, then compute the metrics again."
)
EMPTY_REASONS = {
    "turn_level": "No annotated turns in this metric run: annotate turns on the Annotation "
    "pages, then compute the metrics again.",
    "decoder": "No decoder labels on annotated turns in this metric run: label turns with "
    "decode_feedback and annotate them, then compute the metrics again.",
    "agreement": _NO_AGREEMENT,
    "agreement_pairs": _NO_AGREEMENT,
}
"""Why an export of a metric run has no data lines, by export (section or file) name."""


def empty_reason(name: str) -> str:
    """Why the export ``name`` (``decoder_summary``, ``agreement.csv``…) has no data lines."""
    stem = name.rsplit(".", 1)[0].removesuffix("_summary")
    return EMPTY_REASONS.get(stem, "This metric run has no ended games to export.")


def explain_if_empty(content: str, name: str) -> str:
    """A CSV with no data lines gets a last line (a comment, ``#``) saying why it is empty."""
    if content.count("\n") > 1:
        return content
    return f"{content}# {empty_reason(name)}\n"
