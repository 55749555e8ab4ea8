"""End to end in headless Chromium: a researcher computes a study's metrics from the dashboard
(a real Celery worker does the work) and reads the same numbers ``compute_metrics`` prints."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from evaluation import tables
from evaluation.stats.metrics import METRICS
from tests.factories import make_user

from .builders import annotated_study
from .conftest import metrics_json

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop in this thread; the ORM calls of this test run
    between its calls, never inside the loop."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def ready(transactional_db):
    make_user("rita", role="researcher")
    return annotated_study("browser study")["study"]


def test_researcher_computes_and_reads_the_metrics(ready, celery_worker, live_server, browser):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/evaluation/study/{ready.pk}/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")

    expect(page.locator("#empty-metrics")).to_contain_text("No metrics computed yet")
    assert page.locator("img.figure").count() == 0
    page.fill("#id_resamples", "2000")
    page.fill("#id_seed", "17")
    page.click("#run-form button[type=submit]")
    # the progress panel, then (the page reloads itself) the results
    page.wait_for_selector("#run-progress, #run-meta")
    expect(page.locator("#run-meta")).to_contain_text("2000 resamples, seed 17", timeout=90_000)

    expected = metrics_json("browser study", resamples=2000, seed=17)
    rows = {(r["round"], r["system"]): r for r in expected["rows"]}
    for key in ("success_rate", "turns_per_game", "click_accuracy", "utterance_length"):
        metric = METRICS[key]
        table = page.locator(f'table.pivot[data-metric="{key}"]')
        for (round_index, system), row in rows.items():
            column = sorted({r for r, _ in rows}).index(round_index) + 2
            cell = table.locator(f'tr[data-system="{system}"] td:nth-child({column})')
            value = tables.fmt(row[key]["value"], metric)
            assert cell.inner_text().split("\n")[0].strip() == value, (key, system, round_index)
            assert cell.locator(".ci").inner_text() == tables.fmt_ci(row[key], metric)

    r1 = rows[(1, "B-FFT")]
    turn_table = page.locator("#turn-level-table").inner_text()
    assert tables.fmt(r1["exact_match"]["value"], percent=True) in turn_table
    assert "Sim (identity similarity: no embeddings)" in turn_table
    panel = page.locator('.decoder-panel[data-round="1"][data-system="B-FFT"][data-kind="ternary"]')
    accuracy = r1["decoder"]["ternary"]["accuracy"]
    assert tables.fmt(accuracy["value"], percent=True) in panel.inner_text()
    expect(page.locator("#agreement-table")).to_contain_text("identical a*")

    # (expect, not wait_for_function: the pages' CSP forbids the eval it polls with)
    for image in page.locator("img.figure").all():
        expect(image).to_have_js_property("complete", True)
    widths = page.eval_on_selector_all("img.figure", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 6 and all(w > 100 for w in widths)

    with page.expect_download() as download:
        page.click('#section-success_rate .downloads a[data-kind="csv"]')
    lines = download.value.path().read_text().splitlines()
    assert lines[0] == "round,system,games,metric,value,ci_low,ci_high"
    assert len(lines) == 1 + len(rows)
    with page.expect_download() as download:
        page.click('#section-language .downloads a[data-kind="pdf"]')
    assert download.value.path().read_bytes().startswith(b"%PDF")

    run_id = int(re.match(r"Metric run (\d+)", page.inner_text("#run-meta")).group(1))
    assert run_id != expected["run"]  # the worker's run, not the command's
    progress_url = f"{live_server.url}/evaluation/runs/{run_id}/progress/"
    data = json.loads(
        page.evaluate("async url => JSON.stringify(await (await fetch(url)).json())", progress_url)
    )
    assert data["status"] == "done" and data["progress"] == 1.0

    # The conventions toggle: no paper run yet, then one computed from the dashboard.
    expect(page.locator("#run-conventions")).to_contain_text("Platform conventions")
    page.click('#conventions-toggle a[data-conventions="paper"]')
    expect(page.locator("#empty-conventions")).to_contain_text("No metrics under the paper")
    assert page.locator("#id_conventions").input_value() == "paper"
    page.fill("#id_resamples", "500")
    page.click("#run-form button[type=submit]")
    expect(page.locator("#run-meta")).to_contain_text("500 resamples", timeout=90_000)
    assert page.url.endswith("?conventions=paper")
    expect(page.locator("#run-conventions")).to_contain_text("Paper conventions (ReSpect study)")
    turn_caption = page.locator('#turn-level-table .conventions-caption[data-section="turn_level"]')
    expect(turn_caption).to_contain_text("positive feedback counts a plain yes only")
    alt = page.get_attribute('img.figure[data-section="turn_level"]', "alt")
    assert "Sim −FB averages over turns answered anything but a plain yes" in alt
    paper = metrics_json("browser study", resamples=500, seed=0, conventions="paper")
    paper_r1 = next(r for r in paper["rows"] if (r["round"], r["system"]) == (1, "B-FFT"))
    turn_table = page.locator("#turn-level-table").inner_text()
    assert tables.fmt(paper_r1["positive_feedback"]["value"], percent=True) in turn_table
    page.click('#conventions-toggle a[data-conventions="platform"]')
    expect(page.locator("#run-meta")).to_contain_text("2000 resamples, seed 17")
