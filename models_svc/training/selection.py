"""Which finished training run of a system a next round deploys (reads only)."""

from __future__ import annotations

from collections.abc import Mapping

from games.models import Study

from ..models import TrainingRun
from .selectors import TrainingError


def finished_run(study: Study, round_index: int, system_name: str) -> TrainingRun | None:
    """The finished run the next round deploys by default: the best by ``selection_key``."""
    ranked = ranked_runs(study.pk, round_index, system_name)
    return ranked[0] if ranked else None


def selection_key(run: TrainingRun) -> tuple:
    """Runs compared by the rule each run chose its own adapter with (``trainer.select``): the
    higher validation exact match, then the lower loss; runs without validation come after
    those with it; ties go to the newer run."""
    selected = run.selected or {}
    exact, loss = selected.get("exact_match"), selected.get("loss")
    return (
        exact is not None,
        exact if exact is not None else 0.0,
        -loss if loss is not None else float("-inf"),
        run.finished_at.timestamp() if run.finished_at else 0.0,
        run.pk,
    )


def ranked_runs(study_id: int, round_index: int, system_name: str) -> list[TrainingRun]:
    """A system's finished runs of a round, the best (``selection_key``) first."""
    done = TrainingRun.objects.filter(
        study_id=study_id,
        round_index=round_index,
        system_name=system_name,
        status=TrainingRun.Status.DONE,
    )
    return sorted(done, key=selection_key, reverse=True)


def chosen_runs(
    study: Study, from_round: int, names: list[str], chosen: Mapping[str, int]
) -> dict[str, TrainingRun | None]:
    """Each system's run: the one ``chosen`` names (it must be a finished run of that system and
    round), else the best."""
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise TrainingError(
            f"round {from_round} has no model system to train named {', '.join(unknown)}"
        )
    runs: dict[str, TrainingRun | None] = {}
    for name in names:
        if name not in chosen:
            runs[name] = finished_run(study, from_round, name)
            continue
        run = TrainingRun.objects.filter(
            pk=chosen[name],
            study=study,
            round_index=from_round,
            system_name=name,
            status=TrainingRun.Status.DONE,
        ).first()
        if run is None:
            raise TrainingError(
                f"run #{chosen[name]} is not a finished training run of {name} in round "
                f"{from_round}"
            )
        runs[name] = run
    return runs
