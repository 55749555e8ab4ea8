"""Metric runs through a real Celery worker (Redis broker, ``default`` queue), and their
idempotence."""

from __future__ import annotations

import time

import pytest

from evaluation import services
from evaluation.models import MetricRun

from .builders import annotated_study
from .conftest import metrics_json


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
    assert created and run.status == MetricRun.Status.PENDING
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
    MetricRun.objects.filter(pk=run.pk).update(status=MetricRun.Status.RUNNING, results=None)
    again = services.execute_metric_run(run.pk)
    assert again.status == MetricRun.Status.DONE and again.results == results
    paper = services.execute_metric_run(
        services.create_metric_run(study, resamples=400, seed=3, conventions="paper").pk
    )
    MetricRun.objects.filter(pk=paper.pk).update(status=MetricRun.Status.RUNNING, results=None)
    redone = services.execute_metric_run(paper.pk)
    assert (
        redone.results == paper.results and redone.results["parameters"]["conventions"] == "paper"
    )
    finished_at = again.finished_at
    assert services.execute_metric_run(run.pk).finished_at == finished_at  # nothing redone
