"""Writes of the evaluation app: creating metric runs and carrying them out.

``execute_metric_run`` is the whole job (the Celery task and ``compute_metrics`` both call it):
read the study's inputs, compute every metric, store the results. Progress goes to the run row
with single-row updates, so pages polling it see it while the computation is under way.
"""

from __future__ import annotations

import functools
import logging
import subprocess
from pathlib import Path

from django.db import transaction

from config import heartbeat
from config.errors import ApplicationError
from evaluation import selectors
from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from evaluation.stats.conventions import conventions_named
from evaluation.stats.inputs import STATS_VERSION, MetricParameters
from evaluation.stats.study import compute_study
from games.models import Study

logger = logging.getLogger(__name__)
MAX_MESSAGE = 300


@functools.cache
def code_version() -> str:
    """``stats <version>`` plus the git commit of the code when it is a checkout."""
    version = f"stats {STATS_VERSION}"
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version} (git {commit})" if commit else version


def parameters_of(run: MetricRun) -> MetricParameters:
    """The run's parameters for ``compute_study`` (its stored method and conventions)."""
    extra = run.parameters or {}
    kwargs = {}
    if "satisfaction_classes" in extra:
        kwargs["satisfaction_classes"] = extra["satisfaction_classes"]
    if "binary_neutral_as" in extra:
        kwargs["binary_neutral_as"] = extra["binary_neutral_as"]
    if "sampler" in extra:
        kwargs["sampler"] = extra["sampler"]
    return MetricParameters(
        resamples=run.resamples,
        seed=run.seed,
        confidence=run.confidence,
        method=run.method,
        conventions=conventions_named(run.conventions),
        **kwargs,
    )


def create_metric_run(
    study: Study,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    method: str | None = None,
    conventions: str = MetricRun.Conventions.PLATFORM,
    user=None,
    extra: dict | None = None,
) -> MetricRun:
    """A queued run, not yet sent (parameters validated: ``ApplicationError`` names the bad
    one).

    ``conventions``: ``platform`` or ``paper`` (``evaluation.stats.conventions``); ``method``
    None (or "") takes the conventions' interval method (BCa, or percentile for the paper's).
    """
    try:
        params = MetricParameters(
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            method=method or None,
            conventions=conventions_named(conventions),
            **(extra or {}),
        ).validated()
    except ValueError as error:  # the parameters' contract: the message names the bad one
        raise ApplicationError(str(error)) from error
    return MetricRun.objects.create(
        study=study,
        resamples=params.resamples,
        seed=params.seed,
        confidence=params.confidence,
        method=params.interval_method,  # the same as params.method once validated
        conventions=params.conventions.name,
        parameters=params.as_dict(),
        code_version=code_version(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        message="waiting for a worker",
    )


def request_metric_run(study: Study, *, user=None, **parameters) -> tuple[MetricRun, bool]:
    """Start a run on the ``default`` queue unless the same one is already queued or running.

    "The same": same resamples, seed, confidence, interval method and conventions. Returns the
    run and whether it was created (a double submit gets the first run back). When that run is
    stale (``config.heartbeat``: its worker stopped, or its message was lost while queued) it
    is queued again.
    """
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)
        candidate = create_metric_run(study, user=user, **parameters)
        same = (
            MetricRun.objects.filter(
                study=study,
                status__in=heartbeat.ACTIVE,
                resamples=candidate.resamples,
                seed=candidate.seed,
                confidence=candidate.confidence,
                method=candidate.method,
                conventions=candidate.conventions,
            )
            .exclude(pk=candidate.pk)
            .order_by("created_at", "id")
            .first()
        )
        if same is not None:
            candidate.delete()
            heartbeat.requeue_if_stale(same)
            return same, False
        run = heartbeat.enqueue(candidate)
    return run, True


def report_progress(run_id: int, lease: str, fraction: float, message: str) -> None:
    """Progress of a run, with a heartbeat (raises ``LeaseLost`` when another worker took it)."""
    heartbeat.beat(
        MetricRun,
        run_id,
        lease,
        progress=max(0.0, min(1.0, fraction)),
        message=message[:MAX_MESSAGE],
    )


def _compute(run: MetricRun, lease: str) -> dict:
    stamp = selectors.data_stamp(run.study)
    inputs = selectors.study_input(run.study)
    games = sum(group.n_games for group in inputs.groups)
    message = f"computing {len(inputs.groups)} groups ({games} games)"
    report_progress(run.pk, lease, 0.05, message)
    results = compute_study(
        inputs,
        parameters_of(run),
        progress=lambda fraction, message: report_progress(
            run.pk, lease, 0.05 + 0.9 * fraction, message
        ),
    )
    results["run"] = run.pk
    results["code_version"] = run.code_version or code_version()
    parameters = {**results["parameters"], "code_version": results["code_version"]}
    return {
        "progress": 1.0,
        "message": f"done: {len(results['rows'])} groups",
        "results": results,
        "parameters": parameters,
        "data_stamp": stamp,
    }


def execute_metric_run(run_id: int) -> MetricRun:
    """Compute and store every metric of the run's study (idempotent: done runs are kept).

    The run goes through ``config.heartbeat.execute``: a delivery that finds it done, or
    running on a worker that still beats, leaves it alone; a stale one is computed again from
    the start (the same inputs, parameters and code give the same numbers); any failure marks
    it ``failed`` with the reason.
    """
    return heartbeat.execute(
        MetricRun,
        run_id,
        _compute,
        reset={
            "finished_at": None,
            "results": None,
            "progress": 0.0,
            "message": "reading games, turns, annotations and labels",
        },
        failed={"message": "failed"},
    )
