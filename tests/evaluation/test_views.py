"""Dashboards, downloads and admin exports (Django test client against real PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from evaluation import services, tables
from evaluation.models import MetricRun
from tests.factories import make_game, make_study, make_system, make_user

from .builders import annotated_study, worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


@pytest.fixture
def admin_client_():
    from django.test import Client

    client = Client()
    client.force_login(make_user("ada", role="admin"))
    return client


@pytest.fixture
def done_run():
    study = annotated_study()["study"]
    run = services.create_metric_run(study, resamples=300, seed=4)
    return services.execute_metric_run(run.pk)


def test_pages_are_for_researchers(client, done_run):
    url = reverse("evaluation:study", kwargs={"pk": done_run.study.pk})
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(make_user("pat"))
    assert client.get(url).status_code == 403
    assert client.get(reverse("evaluation:index")).status_code == 403
    csv_url = reverse(
        "evaluation:section_csv", kwargs={"run_id": done_run.pk, "section": "success_rate"}
    )
    assert client.get(csv_url).status_code == 403


def test_empty_study_says_what_to_do(researcher_client):
    study = make_study("fresh")
    html = researcher_client.get(reverse("evaluation:study", kwargs={"pk": study.pk})).content
    html = html.decode()
    assert 'id="empty-study"' in html
    assert "python manage.py import_games" in html
    assert "<img" not in html and "Compute metrics" not in html


def test_games_without_metrics_offer_to_compute(researcher_client):
    study = make_study("waiting")
    make_game(make_system(study), [["page9-0"]])
    html = researcher_client.get(reverse("evaluation:study", kwargs={"pk": study.pk})).content
    html = html.decode()
    assert 'id="empty-metrics"' in html and 'id="run-form"' in html
    assert "<img" not in html


def cell_texts(html: str, table_id_fragment: str) -> list[str]:
    match = re.search(
        rf'<table class="pivot" data-metric="{table_id_fragment}">(.*?)</table>', html, re.S
    )
    assert match, table_id_fragment
    return re.findall(r'<td class="num"[^>]*>([^<]*)', match.group(1))


def test_dashboard_shows_the_run_numbers(researcher_client, done_run):
    response = researcher_client.get(reverse("evaluation:study", kwargs={"pk": done_run.study.pk}))
    html = response.content.decode()
    rows = {(r["round"], r["system"]): r for r in done_run.results["rows"]}
    # success rate pivot: systems B-FFT (ρ=0, ρ=1), HH (ρ=1 only)
    cells = cell_texts(html, "success_rate")
    assert cells == [
        tables.fmt(rows[(0, "B-FFT")]["success_rate"]["value"], percent=True),
        tables.fmt(rows[(1, "B-FFT")]["success_rate"]["value"], percent=True),
        "–",
        "100.0",
    ]
    assert 'id="turn-level-table"' in html and "Sim (identity similarity: no embeddings)" in html
    assert 'class="decoder-panel" data-round="1" data-system="B-FFT" data-kind="ternary"' in html
    assert 'id="agreement-table"' in html
    for section in ("success_rate", "turns_per_game", "click_accuracy", "turn_level", "language"):
        assert (
            reverse(
                "evaluation:section_figure",
                kwargs={"run_id": done_run.pk, "section": section, "fmt": "svg"},
            )
            in html
        )
    assert 'id="stale-warning"' not in html


def test_dashboard_warns_when_data_changed(researcher_client, done_run):
    make_game(make_system(done_run.study, 2, "B-FFT"), [["page9-1"]], external_id="late")
    html = researcher_client.get(
        reverse("evaluation:study", kwargs={"pk": done_run.study.pk})
    ).content.decode()
    assert 'id="stale-warning"' in html


def test_section_downloads(researcher_client, done_run):
    for section in tables.SECTIONS:
        csv_response = researcher_client.get(
            reverse("evaluation:section_csv", kwargs={"run_id": done_run.pk, "section": section})
        )
        assert csv_response.status_code == 200
        assert csv_response["Content-Type"].startswith("text/csv")
        assert f"annotated-run{done_run.pk}-{section}.csv" in csv_response["Content-Disposition"]
        lines = list(csv.reader(io.StringIO(csv_response.content.decode())))
        assert len(lines) > 1, section
        svg = researcher_client.get(
            reverse(
                "evaluation:section_figure",
                kwargs={"run_id": done_run.pk, "section": section, "fmt": "svg"},
            )
        )
        assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    for section in ("success_rate", "decoder"):
        url = reverse(
            "evaluation:section_figure",
            kwargs={"run_id": done_run.pk, "section": section, "fmt": "pdf"},
        )
        pdf = researcher_client.get(url + "?download=1")
        assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
        assert "attachment" in pdf["Content-Disposition"]


def test_success_rate_csv_holds_the_stored_fractions(researcher_client, done_run):
    response = researcher_client.get(
        reverse("evaluation:section_csv", kwargs={"run_id": done_run.pk, "section": "success_rate"})
    )
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    expected = [
        (r["round"], r["system"], r["success_rate"]["value"], *r["success_rate"]["ci"])
        for r in done_run.results["rows"]
    ]
    got = [
        (int(x["round"]), x["system"], float(x["value"]), float(x["ci_low"]), float(x["ci_high"]))
        for x in lines
    ]
    assert got == expected


def test_unknown_or_unfinished_runs_are_404(researcher_client, done_run):
    pending = services.create_metric_run(done_run.study, resamples=100)
    for kwargs in (
        {"run_id": pending.pk, "section": "success_rate"},
        {"run_id": done_run.pk, "section": "nothing"},
    ):
        assert (
            researcher_client.get(reverse("evaluation:section_csv", kwargs=kwargs)).status_code
            == 404
        )
    assert (
        researcher_client.get(
            reverse(
                "evaluation:section_figure",
                kwargs={"run_id": done_run.pk, "section": "success_rate", "fmt": "png"},
            )
        ).status_code
        == 404
    )


def test_progress_json(researcher_client, done_run):
    data = researcher_client.get(
        reverse("evaluation:run_progress", kwargs={"run_id": done_run.pk})
    ).json()
    assert data["status"] == "done" and data["progress"] == 1.0
    assert data["dashboard"] == reverse("evaluation:study", kwargs={"pk": done_run.study.pk})


def test_invalid_run_form_changes_nothing(researcher_client, done_run):
    url = reverse("evaluation:start_run", kwargs={"pk": done_run.study.pk})
    before = MetricRun.objects.count()
    response = researcher_client.post(
        url, {"resamples": 5, "seed": 0, "method": "bca", "confidence": "0.95"}, follow=True
    )
    assert MetricRun.objects.count() == before
    assert "Metric run not started: resamples" in response.content.decode()


def test_admin_exports_use_hashes_only(admin_client_, researcher_client, done_run):
    url = reverse("evaluation:export", kwargs={"run_id": done_run.pk, "name": "agreement.csv"})
    assert researcher_client.get(url).status_code == 403
    agreement = admin_client_.get(url).content.decode()
    lines = list(csv.DictReader(io.StringIO(agreement)))
    assert {(x["round"], x["system"], x["variable"]) for x in lines} == {
        ("1", "B-FFT", "correctness"),
        ("1", "B-FFT", "action"),
        ("1", "B-FFT", "satisfaction"),
    }
    pairs = admin_client_.get(
        reverse("evaluation:export", kwargs={"run_id": done_run.pk, "name": "agreement_pairs.csv"})
    ).content.decode()
    hashes = {worker(name).id_hash for name in ("alice", "bob", "carol")}
    for line in csv.DictReader(io.StringIO(pairs)):
        assert {line["annotator_a_hash"], line["annotator_b_hash"]} <= hashes
    body = admin_client_.get(
        reverse("evaluation:export", kwargs={"run_id": done_run.pk, "name": "agreement.json"})
    ).content.decode()
    assert json.loads(body)["agreement"] == done_run.results["agreement"]
    everything = admin_client_.get(
        reverse("evaluation:export", kwargs={"run_id": done_run.pk, "name": "metrics.csv"})
    ).content.decode()
    for text in (agreement, pairs, body, everything):
        for name in ("alice", "bob", "carol"):
            assert name not in text
    header = next(csv.reader(io.StringIO(everything)))
    assert "decoder_ternary_precision_neutral" in header and "sim_neg_fb_ci_high" in header
    page = admin_client_.get(reverse("evaluation:exports", kwargs={"pk": done_run.study.pk}))
    assert page.status_code == 200 and b"agreement.json" in page.content
