"""Metric runs through a real Celery worker (Redis broker, ``default`` queue), and their
idempotence."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config import heartbeat
from evaluation import services
from evaluation.models import MetricRun

from .builders import annotated_study
from .conftest import metrics_json


def silent_since() -> datetime:
    """A heartbeat old enough for its run to be stale."""
    return timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)


def wait_for(run_id: int, timeout: float = 120.0) -> MetricRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = MetricRun.objects.get(pk=run_id)
        if not run.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"metric run {run_id} did not finish in {timeout} s")


@pytest.mark.celery
def test_a_worker_computes_the_same_numbers_as_the_command(celery_worker, import_sample):
    import_sample()
    from games.models import Study

    study = Study.objects.get(name="sample")
    run, created = services.request_metric_run(study, resamples=1000, seed=21)
    assert created and run.status == MetricRun.Status.QUEUED
    finished = wait_for(run.pk)
    assert finished.status == MetricRun.Status.DONE, finished.error
    assert finished.progress == 1.0 and finished.message == "done: 1 groups"
    assert finished.task_id and finished.started_at and finished.finished_at
    assert finished.parameters["resamples"] == 1000 and finished.parameters["seed"] == 21
    assert finished.parameters["code_version"] == finished.code_version
    assert finished.data_stamp["games"] == 24
    command = metrics_json("sample", resamples=1000, seed=21)
    assert finished.results["rows"] == command["rows"]
    assert finished.results["parameters"] == command["parameters"]
    # the paper's conventions travel with the run to the worker
    paper, created = services.request_metric_run(
        study, resamples=1000, seed=21, conventions="paper"
    )
    assert created and paper.pk != run.pk
    finished = wait_for(paper.pk)
    assert finished.status == MetricRun.Status.DONE, finished.error
    assert finished.parameters["conventions"] == "paper" and finished.method == "percentile"
    command = metrics_json("sample", resamples=1000, seed=21, conventions="paper")
    assert finished.results["rows"] == command["rows"]
    assert finished.results["parameters"] == command["parameters"]
    assert finished.results["rows"][0]["utterance_length"]["value"] == 904 / 168


@pytest.mark.django_db
def test_a_double_submit_gets_the_first_run():
    study = annotated_study()["study"]
    first, created = services.request_metric_run(study, resamples=500, seed=1)
    again, created_again = services.request_metric_run(study, resamples=500, seed=1)
    other, created_other = services.request_metric_run(study, resamples=500, seed=2)
    paper, created_paper = services.request_metric_run(
        study, resamples=500, seed=1, conventions="paper"
    )
    paper_again, created_paper_again = services.request_metric_run(
        study, resamples=500, seed=1, conventions="paper", method="percentile"
    )
    assert created and not created_again and again.pk == first.pk
    assert created_other and other.pk != first.pk
    assert created_paper and paper.pk != first.pk and paper.conventions == "paper"
    assert not created_paper_again and paper_again.pk == paper.pk
    assert MetricRun.objects.filter(study=study).count() == 3


@pytest.mark.django_db
def test_redelivered_runs_recompute_the_same_numbers_and_done_runs_stay():
    study = annotated_study()["study"]
    run = services.create_metric_run(study, resamples=400, seed=3)
    done = services.execute_metric_run(run.pk)
    results = done.results
    # a worker died mid-run: the task comes back with the run still "running"
    MetricRun.objects.filter(pk=run.pk).update(
        status=MetricRun.Status.RUNNING, results=None, heartbeat_at=silent_since()
    )
    again = services.execute_metric_run(run.pk)
    assert again.status == MetricRun.Status.DONE and again.results == results
    paper = services.execute_metric_run(
        services.create_metric_run(study, resamples=400, seed=3, conventions="paper").pk
    )
    MetricRun.objects.filter(pk=paper.pk).update(
        status=MetricRun.Status.RUNNING, results=None, heartbeat_at=silent_since()
    )
    redone = services.execute_metric_run(paper.pk)
    assert (
        redone.results == paper.results and redone.results["parameters"]["conventions"] == "paper"
    )
    finished_at = again.finished_at
    assert services.execute_metric_run(run.pk).finished_at == finished_at  # nothing redone


@pytest.mark.django_db
def test_a_delivery_leaves_a_run_alone_while_its_worker_beats():
    study = annotated_study()["study"]
    run = services.create_metric_run(study, resamples=400, seed=3)
    lease = heartbeat.claim(MetricRun, run.pk, startable=[MetricRun.Status.QUEUED])
    services.report_progress(run.pk, lease, 0.5, "halfway")
    # the broker hands the task out again (visibility timeout) while the first worker computes
    again = services.execute_metric_run(run.pk)
    assert (again.status, again.progress, again.message) == ("running", 0.5, "halfway")
    assert again.results is None and again.attempts == 1 and again.lease == lease
    # the first worker finds its lease taken once a stale run was claimed by another delivery
    MetricRun.objects.filter(pk=run.pk).update(heartbeat_at=silent_since())
    taken = services.execute_metric_run(run.pk)
    assert taken.status == "done" and taken.attempts == 2 and taken.lease == ""
    with pytest.raises(heartbeat.LeaseLost):
        services.report_progress(run.pk, lease, 0.6, "too late")
    assert MetricRun.objects.get(pk=run.pk).message == "done: 3 groups"


@pytest.mark.django_db
def test_requesting_a_stale_run_again_queues_it_again(django_capture_on_commit_callbacks):
    study = annotated_study()["study"]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run, _ = services.request_metric_run(study, resamples=500, seed=1)
    assert len(queued) == 1
    lease = heartbeat.claim(MetricRun, run.pk, startable=[MetricRun.Status.QUEUED])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        live, created = services.request_metric_run(study, resamples=500, seed=1)
    assert (live.pk, created, live.status, len(queued)) == (run.pk, False, "running", 0)
    # its worker was killed: no heartbeat for longer than RUN_STALE_SECONDS
    MetricRun.objects.filter(pk=run.pk).update(heartbeat_at=silent_since())
    with django_capture_on_commit_callbacks(execute=False) as queued:
        stale, created = services.request_metric_run(study, resamples=500, seed=1)
    assert (stale.pk, created, stale.status, stale.lease, len(queued)) == (
        run.pk,
        False,
        "queued",
        "",
        1,
    )
    # a second request while it waits for a worker does not queue it twice
    with django_capture_on_commit_callbacks(execute=False) as queued:
        services.request_metric_run(study, resamples=500, seed=1)
    assert len(queued) == 0 and MetricRun.objects.filter(study=study).count() == 1
    # the killed worker's own delivery does nothing once the run was claimed again
    done = services.execute_metric_run(run.pk)
    assert done.status == "done" and done.attempts == 2
    with pytest.raises(heartbeat.LeaseLost):
        services.report_progress(run.pk, lease, 0.6, "from the dead")
