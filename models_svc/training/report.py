"""A run's importance-weight diagnostics as a report (pure: reads the run row, no torch).

``TrainingRun.diagnostics`` holds what the trainer recorded (``trainer.new_diagnostics``):
before the first optimiser step (``start``) and per epoch, RL's importance weight c before the
floor and cap (min, mean, max, share changed by floor or cap, effective sample size) and KTO's
log-ratio r and reference point z (min, mean, max); null where the objective has none. When the
starting model is the policy that logged p_t, the start values are c = 1 and r = 0.
"""

from __future__ import annotations

from typing import Any

TERMS = ("rl_coefficient", "kto_log_ratio", "kto_reference_point")
TERM_NAMES = {
    "rl_coefficient": "RL importance weight c = π/p_t (before floor and cap)",
    "kto_log_ratio": "KTO log-ratio r = log π − log p_t",
    "kto_reference_point": "KTO reference point z",
}


def _terms(record: dict | None) -> dict[str, Any]:
    record = record or {}
    return {name: record.get(name) for name in TERMS}


def training_report(run) -> dict[str, Any]:
    """The run's diagnostics as JSON-ready data; every term present, null where none."""
    diagnostics = run.diagnostics or {}
    return {
        "run": run.pk,
        "objective": run.objective,
        "system": run.system_name,
        "round": run.round_index,
        "status": run.status,
        "start": _terms(diagnostics.get("start")),
        "epochs": [
            {"seed": e["seed"], "epoch": e["epoch"], **_terms(e)}
            for e in diagnostics.get("epochs", [])
        ],
        "label_smoothing": diagnostics.get("label_smoothing"),
        "selection_decoding": diagnostics.get("selection_decoding"),
    }


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (moment, term) that has values: what the run page and the command print."""
    moments = [("start", report["start"])] + [
        (f"seed {e['seed']} epoch {e['epoch']}", e) for e in report["epochs"]
    ]
    rows = []
    for moment, terms in moments:
        for name in TERMS:
            values = terms.get(name)
            if values:
                rows.append(
                    {
                        "moment": moment,
                        "term": TERM_NAMES[name],
                        "share_capped": None,
                        "effective_sample_size": None,
                        **values,
                    }
                )
    return rows
