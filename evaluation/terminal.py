"""The command line's table of a metric run (``compute_metrics``), from its stored results."""

from __future__ import annotations

from collections.abc import Callable

from evaluation.captions import conventions_caption, interval_method
from evaluation.stats.metrics import METRICS
from evaluation.tables import fmt, fmt_ci, rows_sorted, sim_label


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
