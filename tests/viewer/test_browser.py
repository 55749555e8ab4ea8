"""End to end in headless Chromium: a researcher replays a demo game turn by turn."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db) -> None:
    """The demo data, loaded before the browser starts: Playwright's sync API runs an event
    loop in this thread, and Django refuses ORM calls while one runs. DEBUG on, as in the demo,
    so the users get the known demo password."""
    with override_settings(DEBUG=True):
        call_command("load_demo", "--tangrams", "30")


def test_researcher_steps_through_a_demo_game(demo, live_server, browser):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "researcher")
    page.fill("#id_password", "respect-demo")
    page.click("button[type=submit]")

    page.click("text=Demo study")
    page.select_option("#id_round", "2")
    page.select_option("#id_system", "B-FFT")
    page.click("#game-filters button[type=submit]")
    assert page.inner_text("#game-totals").startswith("7 games")
    page.click("#games-table tbody tr:first-child a")

    assert re.fullmatch(r"Turn 1 of \d+", page.inner_text("#turn-position"))
    count = int(page.inner_text("#turn-position").split()[-1])
    assert count >= 2
    first_utterance = page.inner_text("#utterance")
    # Every replayed image is served from storage and decodes in the browser.
    # (expect, not wait_for_function: the pages' CSP forbids the eval it polls with)
    for image in page.locator("#images img").all():
        expect(image).to_have_js_property("complete", True)
    widths = page.eval_on_selector_all("#images img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [224] * 10

    page.click("#next-turn")
    expect(page.locator("#turn-position")).to_have_text(f"Turn 2 of {count}")
    assert page.inner_text("#utterance") != first_utterance
    changed = page.inner_text("#changed-letters").split()
    marked = page.eval_on_selector_all(
        "#images .tangram.changed", "figs => figs.map(f => f.dataset.letter)"
    )
    assert sorted(marked) == changed and changed

    page.click("#order-toggle")
    assert page.get_attribute("#images", "data-order") == "speaker"
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(r"turn=1&order=speaker"))
    assert page.inner_text("#turn-position") == f"Turn 1 of {count}"
