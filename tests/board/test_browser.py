"""End to end in headless Chromium on the demo study: a researcher takes round 2 from closing
its lobby to opening round 3 on the round board, registering the tiny base checkpoint on the
Checkpoints page on the way. A real Celery worker decodes, computes the metrics and trains."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from games.demo import DEMO_STUDY
from games.models import Study
from models_svc.selectors import label_coverage
from models_svc.services import decode_study

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.ml,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop in this thread; the ORM calls of this test run
    between its calls, never inside the loop."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def demo(transactional_db, settings, tmp_path):
    """The demo study with rounds 0 and 1 decoded (the round-2 systems learn from them), and a
    tiny random checkpoint to train from."""
    from models_svc.tiny_models import tiny_idefics2

    settings.TRAINING_DIR = tmp_path / "training"
    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    call_command("load_demo", "--tangrams", "30")
    from django.contrib.auth.models import User

    # With DEBUG off (as in tests) the demo's users get no known password: give ours one.
    researcher = User.objects.get(username="researcher")
    researcher.set_password("respect-demo")
    researcher.save(update_fields=["password"])
    study = Study.objects.get(name=DEMO_STUDY)
    for round_index in (0, 1):
        decode_study(study, decoder_spec="lexicon", kind="binary", round_index=round_index)
    return {
        "study": study,
        "checkpoint": str(tiny_idefics2(tmp_path / "tiny-idefics2")),
        "decodable": label_coverage(study.pk, 2, "lexicon", "binary").decodable,
        # B-FFT learns from its own games of the round only
        "learnable": label_coverage(study.pk, 2, "lexicon", "binary", ["B-FFT"]).decodable,
    }


def step(page, key: str):
    return page.locator(f'#round-2 section[data-step="{key}"]')


def test_a_round_goes_from_decoding_to_the_next_round(demo, celery_worker, live_server, browser):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", "respect-demo")
    page.click("button[type=submit]")
    page.click("a.board-link")
    expect(page.locator("h1")).to_have_text("Round board")
    board = page.url
    expect(page.locator("#round-2 .next-step")).to_contain_text("Next step: Collect games")

    step(page, "collect").locator("button", has_text="Close the lobby").click()
    expect(page.locator(".messages")).to_contain_text("Round 2: the lobby is closed.")
    expect(step(page, "collect")).to_have_attribute("data-state", "done")
    assert step(page, "train").locator("button.train").first.is_disabled()
    expect(step(page, "train")).to_contain_text(
        f"Waiting: decode first: 0 of {demo['learnable']} turns labelled (binary, lexicon)."
    )

    step(page, "decode").locator("button.decode").click()
    expect(page.locator(".messages")).to_contain_text("queued on the gpu queue (binary, lexicon")
    expect(step(page, "decode")).to_have_attribute("data-state", "done", timeout=120_000)
    coverage = step(page, "decode").locator("td.coverage")
    expect(coverage).to_have_text(f"{demo['decodable']} of {demo['decodable']}")
    expect(page.locator("#round-2 .next-step")).to_contain_text("Next step: Compute metrics")

    step(page, "metrics").locator('input[name="resamples"]').fill("200")
    step(page, "metrics").locator("button.metrics").click()
    expect(page.locator(".messages")).to_contain_text(re.compile(r"Metric run \d+ started\."))
    expect(step(page, "metrics")).to_have_attribute("data-state", "done", timeout=180_000)
    expect(step(page, "train")).to_contain_text("Waiting: needs a base checkpoint")

    page.click("nav[aria-label='Related pages'] >> text=Checkpoints")
    page.select_option("#id_kind", "policy")
    page.fill("#id_spec", demo["checkpoint"])
    page.click("#register-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(
        f"Registered policy checkpoint hf:{demo['checkpoint']}: files ready."
    )
    page.goto(board)

    for system in ("B-FFT", "B-KTO"):
        target = step(page, "train").locator(f'.train-target[data-system="{system}"]')
        form = target.locator("form")
        assert form.locator('select[name="base"]').input_value() == f"hf:{demo['checkpoint']}"
        form.locator('select[name="preset"]').select_option("tiny")
        form.locator('input[name="epochs"]').fill("1")
        form.locator('input[name="seeds"]').fill("1")
        form.locator("button.train").click()
        expect(page.locator(".messages")).to_contain_text(f", {system}) queued on the gpu queue.")
        expect(target.locator(".run-status")).to_have_text("done", timeout=300_000)

    expect(step(page, "train")).to_have_attribute("data-state", "done")
    next_round = step(page, "next_round").locator("button.next-round")
    expect(next_round).to_be_enabled()
    next_round.click()
    expect(page.locator(".messages")).to_contain_text(
        "Round 3 opened with the trained policies (B-FFT, B-KTO, CONTROL)."
    )
    expect(page.locator("#round-3")).to_be_visible()
    systems = page.locator("#round-3 table.board-games tbody tr")
    expect(systems).to_have_count(3)
    assert systems.evaluate_all("rows => rows.map(r => r.dataset.system)") == [
        "B-FFT",
        "B-KTO",
        "CONTROL",
    ]
    expect(page.locator("#round-3 .next-step")).to_contain_text("Next step: Collect games")
    expect(page.locator('#round-2 section[data-step="next_round"]')).to_contain_text(
        "Round 3 is open"
    )
