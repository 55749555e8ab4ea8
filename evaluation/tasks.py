"""Celery tasks of the evaluation app (queue ``default``); they take ids and stay thin."""

from __future__ import annotations

from celery import shared_task

from evaluation import services


@shared_task(name="evaluation.tasks.compute_metric_run", acks_late=True)
def compute_metric_run(run_id: int) -> str:
    """Compute a metric run; a redelivered task recomputes the same numbers once the run is
    stale, and does nothing while another worker still computes it."""
    run = services.execute_metric_run(run_id)
    return run.status
