"""Dashboards, downloads and admin exports (Django test client against real PostgreSQL)."""

from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re

import pytest
from django.urls import reverse

from evaluation import services, tables
from evaluation.models import MetricRun
from evaluation.stats.metrics import SECTIONS
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


METRIC_HEADER = ["round", "system", "games", "metric", "value", "ci_low", "ci_high"]
EXPECTED_HEADERS = {
    "success_rate": METRIC_HEADER,
    "turns_per_game": METRIC_HEADER,
    "click_accuracy": METRIC_HEADER,
    "turn_level": METRIC_HEADER,
    "language": METRIC_HEADER,
    "decoder": [
        "round",
        "system",
        "kind",
        "decoder",
        "reference",
        "predicted",
        "count",
        "fraction_of_total",
        "fraction_of_row",
        "fraction_of_column",
    ],
}
SECTION_METRICS = {
    "success_rate": ["success_rate"],
    "turns_per_game": ["turns_per_game"],
    "click_accuracy": ["click_accuracy"],
    "turn_level": ["exact_match", "positive_feedback", "sim", "sim_neg_fb"],
    "language": [
        "vocabulary_size",
        "utterance_length",
        "reset_phrases",
        "try_again_phrases",
        "reset_per_100",
        "try_again_per_100",
    ],
}


def assert_metric_rows(lines: list[list[str]], results: dict, metrics: list[str]) -> None:
    """One line per round × system × metric the run holds, with its stored point estimate."""
    expected = {}
    for row in results["rows"]:
        for key in metrics:
            value = row.get(key)
            if value is None:
                continue
            point = value["value"] if isinstance(value, dict) else value
            expected[(str(row["round"]), row["system"], key)] = point
    assert expected, metrics
    got = {(line[0], line[1], line[3]): line[4] for line in lines}
    assert set(got) == set(expected)
    for where, point in expected.items():
        assert (got[where] == "") if point is None else float(got[where]) == pytest.approx(point)


def assert_decoder_rows(lines: list[list[str]], results: dict) -> None:
    """A k × k block per panel holding the run's confusion counts, with fractions of the total."""
    expected = {
        (str(row["round"]), row["system"], kind, block["decoder"]): block["confusion"]
        for row in results["rows"]
        for kind, block in (row.get("decoder") or {}).items()
    }
    assert expected
    got: dict[tuple[str, ...], list[float]] = {}
    fractions: dict[tuple[str, ...], float] = {}
    for line in lines:
        panel = tuple(line[:4])
        got.setdefault(panel, []).append(float(line[6]))
        fractions[panel] = fractions.get(panel, 0.0) + float(line[7])
    assert set(got) == set(expected)
    for panel, confusion in expected.items():
        assert got[panel] == pytest.approx([count for row in confusion for count in row])
        assert fractions[panel] == pytest.approx(1.0, abs=1e-3), panel


def test_section_downloads(researcher_client, done_run):
    for section in SECTIONS:
        csv_response = researcher_client.get(
            reverse("evaluation:section_csv", kwargs={"run_id": done_run.pk, "section": section})
        )
        assert csv_response.status_code == 200
        assert csv_response["Content-Type"].startswith("text/csv")
        assert f"annotated-run{done_run.pk}-{section}.csv" in csv_response["Content-Disposition"]
        lines = list(csv.reader(io.StringIO(csv_response.content.decode())))
        assert lines[0] == EXPECTED_HEADERS[section], section
        if section == "decoder":
            assert_decoder_rows(lines[1:], done_run.results)
        else:
            assert_metric_rows(lines[1:], done_run.results, SECTION_METRICS[section])
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


@pytest.fixture
def paper_run(done_run):
    run = services.create_metric_run(done_run.study, resamples=300, seed=4, conventions="paper")
    return services.execute_metric_run(run.pk)


def page_text(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html_lib.unescape(response.content.decode())


def captions(html: str) -> dict[str, list[str]]:
    """Per section or metric: the conventions captions of its tables (and the figure's, which
    ends the figure's alt text; the figure file carries it too)."""
    found: dict[str, list[str]] = {}
    for section, text in re.findall(r'conventions-caption" data-section="([^"]+)">([^<]*)<', html):
        found.setdefault(section, []).append(text)
    for section, alt in re.findall(
        r'<img class="figure[^"]*"[^>]* data-section="([^"]+)" alt="([^"]*)"', html
    ):
        found.setdefault(section, []).append(alt.split(". ", 1)[1])
    return found


PAPER_TITLE = "Paper conventions (ReSpect study); differs from the platform's definitions: "
PAPER_INTERVALS = "percentile bootstrap intervals (platform: BCa)"


def test_the_toggle_shows_each_conventions_runs_with_their_captions(
    researcher_client, done_run, paper_run
):
    url = reverse("evaluation:study", kwargs={"pk": done_run.study.pk})
    platform_html = page_text(researcher_client, url)
    assert 'id="conventions-toggle"' in platform_html
    assert '<a href="?conventions=paper" data-conventions="paper">' in platform_html
    assert 'data-conventions="platform" class="current" aria-current="page"' in platform_html
    assert f"Metric run {done_run.pk} " in platform_html
    platform_captions = captions(platform_html)
    same = "Platform conventions: the platform's definitions, 95% BCa intervals."
    for section in ("success_rate", "turn_level", "decoder", "language", "agreement"):
        assert set(platform_captions[section]) == {same}, section
    assert "Paper conventions" not in platform_html

    paper_html = page_text(researcher_client, url + "?conventions=paper")
    assert f"Metric run {paper_run.pk} " in paper_html
    assert 'data-conventions="paper" class="current" aria-current="page"' in paper_html
    paper_captions = captions(paper_html)
    # interaction figures and tables, decoder, agreement: only the intervals differ
    for section in ("success_rate", "turns_per_game", "click_accuracy", "decoder", "agreement"):
        assert set(paper_captions[section]) == {f"{PAPER_TITLE}{PAPER_INTERVALS}."}, section
    # turn level (figure and table): the feedback conventions and the intervals
    assert set(paper_captions["turn_level"]) == {
        PAPER_TITLE
        + "positive feedback counts a plain yes only (platform: any yes…); "
        + "Sim −FB averages over turns answered anything but a plain yes "
        + f"(platform: turns with negative feedback); {PAPER_INTERVALS}."
    }
    # language: the figure has both token conventions; each table its own
    tokens = (
        "vocabulary and utterance length count alphanumeric tokens [a-z0-9]+ "
        "(platform: whitespace-separated words)"
    )
    per_turn = "utterance length is tokens per turn (platform: per non-empty utterance)"
    assert paper_captions["language"] == [f"{PAPER_TITLE}{tokens}; {per_turn}; {PAPER_INTERVALS}."]
    assert paper_captions["utterance_length"] == [
        f"{PAPER_TITLE}{tokens}; {per_turn}; {PAPER_INTERVALS}."
    ]
    assert paper_captions["vocabulary_size"] == [f"{PAPER_TITLE}{tokens}."]  # a count
    assert paper_captions["reset_phrases"] == [
        "Paper conventions (ReSpect study): here the same as the platform's definitions."
    ]
    assert "Utterance length (tokens per turn)" in paper_html
    # the numbers are the paper run's
    paper_row = next(r for r in paper_run.results["rows"] if r.get("exact_match"))
    platform_row = next(r for r in done_run.results["rows"] if r.get("exact_match"))
    for row, page in ((paper_row, paper_html), (platform_row, platform_html)):
        table = re.search(r'id="turn-level-table">(.*?)</table>', page, re.S).group(1)
        assert tables.fmt(row["positive_feedback"]["value"], percent=True) in table
    assert paper_row["positive_feedback"]["value"] != platform_row["positive_feedback"]["value"]
    assert "?conventions=paper&normalize=row#section-decoder" in paper_html

    # ?run= shows that run, whatever ?conventions= says; unknown conventions are the platform's
    by_run = page_text(researcher_client, url + f"?run={done_run.pk}&conventions=paper")
    assert f"Metric run {done_run.pk} " in by_run and "Paper conventions" not in by_run
    assert 'data-conventions="platform" class="current"' in by_run
    assert f"Metric run {done_run.pk} " in page_text(researcher_client, url + "?conventions=x")


def test_no_run_under_the_chosen_conventions_says_how_to_compute_one(researcher_client, done_run):
    url = reverse("evaluation:study", kwargs={"pk": done_run.study.pk}) + "?conventions=paper"
    html = page_text(researcher_client, url)
    assert 'id="empty-conventions"' in html and "<img" not in html
    assert "No metrics under the paper (ReSpect study) conventions yet" in html
    assert '<option value="paper" selected>' in html
    assert '--study "annotated" --conventions paper' in html


def test_starting_a_paper_run_from_the_dashboard(researcher_client, done_run):
    url = reverse("evaluation:start_run", kwargs={"pk": done_run.study.pk})
    form = {"resamples": 300, "seed": 4, "confidence": "0.95", "method": ""}
    response = researcher_client.post(url, {**form, "conventions": "paper"})
    paper = MetricRun.objects.latest()
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("evaluation:study", kwargs={"pk": done_run.study.pk}) + "?conventions=paper"
    )
    assert (paper.conventions, paper.method, paper.parameters["conventions"]) == (
        "paper",
        "percentile",
        "paper",
    )
    progress = researcher_client.get(
        reverse("evaluation:run_progress", kwargs={"run_id": paper.pk})
    ).json()
    assert progress["dashboard"].endswith("?conventions=paper")
    researcher_client.post(url, {**form, "conventions": "platform"})
    platform = MetricRun.objects.latest()
    assert platform.pk != paper.pk and platform.method == "bca"
    assert platform.conventions == "platform"


def test_figures_and_downloads_name_the_conventions(researcher_client, admin_client_, paper_run):
    figure = researcher_client.get(
        reverse(
            "evaluation:section_figure",
            kwargs={"run_id": paper_run.pk, "section": "success_rate", "fmt": "svg"},
        )
    ).content.decode()
    assert "Paper conventions (ReSpect study)" in figure and "(platform: BCa)" in figure
    csv_response = researcher_client.get(
        reverse("evaluation:section_csv", kwargs={"run_id": paper_run.pk, "section": "language"})
    )
    disposition = csv_response["Content-Disposition"]
    assert f"annotated-run{paper_run.pk}-paper-language.csv" in disposition
    everything = admin_client_.get(
        reverse("evaluation:export", kwargs={"run_id": paper_run.pk, "name": "metrics.csv"})
    ).content.decode()
    assert {line["conventions"] for line in csv.DictReader(io.StringIO(everything))} == {"paper"}
