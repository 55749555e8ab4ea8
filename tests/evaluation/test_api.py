"""The metric-run API (DRF, session auth)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from evaluation import services
from evaluation.models import MetricRun
from tests.factories import make_user

from .builders import annotated_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(make_user("rita", role="researcher"))
    return client


def test_researchers_only():
    study = annotated_study()["study"]
    url = reverse("evaluation:api-study-runs", kwargs={"pk": study.pk})
    client = APIClient()
    assert client.get(url).status_code in (401, 403)
    client.force_authenticate(make_user("pat"))
    assert client.get(url).status_code == 403
    assert client.post(url, {}, format="json").status_code == 403
    assert MetricRun.objects.count() == 0


def test_start_list_and_read_runs(api):
    study = annotated_study()["study"]
    url = reverse("evaluation:api-study-runs", kwargs={"pk": study.pk})
    response = api.post(url, {"resamples": 500, "seed": 5}, format="json")
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.json()["status"] == "queued" and response.json()["method"] == "bca"
    again = api.post(url, {"resamples": 500, "seed": 5}, format="json")
    assert again.status_code == 200 and again.json()["id"] == run_id
    assert response.json()["conventions"] == "platform"
    bad = api.post(url, {"resamples": 0, "method": "magic", "conventions": "x"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"resamples", "method", "conventions"}
    paper = api.post(url, {"resamples": 500, "seed": 5, "conventions": "paper"}, format="json")
    assert paper.status_code == 202 and paper.json()["id"] != run_id
    assert (paper.json()["conventions"], paper.json()["method"]) == ("paper", "percentile")
    assert [r["id"] for r in api.get(url).json()] == [paper.json()["id"], run_id]

    services.execute_metric_run(run_id)
    detail = api.get(reverse("evaluation:api-run", kwargs={"run_id": run_id})).json()
    assert detail["status"] == "done" and detail["progress"] == 1.0
    assert detail["results"]["rows"][0]["system"] == "B-FFT"
    assert detail["results"] == MetricRun.objects.get(pk=run_id).results


def test_the_api_caps_resamples_like_the_page(api):
    study = annotated_study()["study"]
    url = reverse("evaluation:api-study-runs", kwargs={"pk": study.pk})
    refused = api.post(url, {"resamples": 1_000_000}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"resamples": ["Ensure this value is less than or equal to 100000."]}
    assert api.post(url, {"resamples": 100_000}, format="json").status_code == 202
    assert list(MetricRun.objects.values_list("resamples", flat=True)) == [100_000]
