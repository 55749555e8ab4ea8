"""Reads for cost planning and simulated studies (the dashboard and ``compute_metrics``).

Cost planning compares, per round, each model system with CONTROL (or, in a round without
CONTROL, every pair of systems): how many games per system would make the difference of their
success rates exclude zero at 95% confidence (``evaluation.stats.power``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from django.db.models import Count, Q

from evaluation.stats.power import PowerEstimate, games_needed
from games.models import Game, Study, System


@dataclass(frozen=True)
class PlanningRow:
    round_index: int
    system: str
    compared_with: str
    games: tuple[int, int]
    estimate: PowerEstimate


def success_counts(study: Study) -> dict[tuple[int, str], tuple[int, int]]:
    """(successful, ended) games per (round, system) of model and human systems."""
    rows = (
        Game.objects.filter(study=study, status=Game.Status.ENDED)
        .values("round__index", "system__name")
        .annotate(
            ended=Count("pk"), successful=Count("pk", filter=Q(outcome=Game.Outcome.SUCCESSFUL))
        )
    )
    return {(r["round__index"], r["system__name"]): (r["successful"], r["ended"]) for r in rows}


def cost_planning(study: Study, *, seed: int = 0) -> list[PlanningRow]:
    counts = success_counts(study)
    rounds = sorted({round_index for round_index, _ in counts})
    rows = []
    for round_index in rounds:
        names = sorted(name for r, name in counts if r == round_index and name != System.HUMAN)
        if System.CONTROL in names:
            pairs = [(name, System.CONTROL) for name in names if name != System.CONTROL]
        else:
            pairs = list(combinations(names, 2))
        for first, second in pairs:
            (s_a, n_a), (s_b, n_b) = counts[(round_index, first)], counts[(round_index, second)]
            rows.append(
                PlanningRow(
                    round_index,
                    first,
                    second,
                    (n_a, n_b),
                    games_needed(s_a, n_a, s_b, n_b, seed=seed),
                )
            )
    return rows


def planning_document(rows: list[PlanningRow]) -> list[dict]:
    return [
        {
            "round": row.round_index,
            "system": row.system,
            "compared_with": row.compared_with,
            "observed_games": list(row.games),
            "observed_difference": row.estimate.observed_difference,
            "games_per_system": row.estimate.games_per_system,
            "confidence": row.estimate.confidence,
        }
        for row in rows
    ]


def simulation_summary(study: Study) -> dict | None:
    """A simulated study's population and its decoder against the speakers' own satisfaction,
    per round and system; None for a study played by people."""
    if not study.simulated:
        return None
    from models_svc.simulation import decoder_truth

    truth = decoder_truth(study)
    return {
        "population": study.simulation.get("population", {}),
        "plan": study.simulation.get("plan", {}),
        "decoder": [
            {"round": round_index, "system": system, **values}
            for (round_index, system), values in sorted(truth.items())
        ],
    }
