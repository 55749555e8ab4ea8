"""Fault drill: a whole Celery worker is SIGKILLed while it computes a metric run. Requesting
the same run again once it is stale queues it again; a new worker computes it exactly once,
and the killed worker's own delivery, handed out again by the broker, does nothing."""

from __future__ import annotations

import pytest
from django.db import transaction

from config import heartbeat
from evaluation import services
from evaluation.models import MetricRun
from tests.worker_processes import finished_tasks, kill, start_worker, stop, wait_for, worker_env

from .builders import annotated_study

pytestmark = [
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql("worker processes share the test database"),
]

TASK = "evaluation.tasks.compute_metric_run"
PARAMETERS = {"resamples": 1_000_000, "seed": 5}  # seconds of bootstrap per group


def row(run: MetricRun) -> MetricRun:
    return MetricRun.objects.get(pk=run.pk)


def test_a_metric_run_whose_worker_was_killed_is_computed_once(settings, tmp_path):
    settings.RUN_STALE_SECONDS = 3
    # the broker hands the killed worker's task out again after 2 s, before the run is stale
    env = worker_env(RESPECT_RUN_STALE_SECONDS="3", CELERY_VISIBILITY_TIMEOUT="2")
    study = annotated_study()["study"]
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker("default", env, first_log)
    try:
        with transaction.atomic():
            run, created = services.request_metric_run(study, **PARAMETERS)
        assert created
        # in progress: claimed, inputs read, a heartbeat after the first of three groups
        wait_for(lambda: row(run).progress > 0.05, 600, "the first group", first_log)
        kill(first)
    finally:
        kill(first)
    stuck = row(run)
    assert (stuck.status, stuck.attempts, stuck.results) == ("running", 1, None)
    wait_for(lambda: heartbeat.is_stale(row(run)), 60, "the run to go stale", first_log)
    with transaction.atomic():
        again, created = services.request_metric_run(study, **PARAMETERS)
    assert (again.pk, created, again.status, again.lease) == (run.pk, False, "queued", "")
    second = start_worker("default", env, second_log)
    try:
        # two deliveries: the one queued again and the killed worker's, handed out again
        wait_for(lambda: finished_tasks(second_log, TASK) == 2, 900, "both deliveries", second_log)
    finally:
        stop(second)
    done = row(run)
    assert done.status == "done", done.error
    assert (done.attempts, done.progress, done.message, done.lease) == (
        2,
        1.0,
        "done: 3 groups",
        "",
    )
    assert done.results["run"] == run.pk and len(done.results["rows"]) == 3
    assert MetricRun.objects.filter(study=study).count() == 1
    # the same numbers as an uninterrupted computation
    reference = services.execute_metric_run(services.create_metric_run(study, **PARAMETERS).pk)
    assert done.results["rows"] == reference.results["rows"]
