"""Layout of the play page at 1280 px in Chromium: boxes measured, not screenshots compared."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from . import helpers
from .test_browser import worker_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"]
        and inner["y"] >= outer["y"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def test_send_button_numbers_and_legend_fit_the_panel_at_1280px(play_server, browser):
    from games.models import Game

    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(turn_limit=12), "HH")
    lobby_url = f"{play_server.url}/play/lobby/{round_.pk}/"
    first, page_a = worker_page(browser, play_server, "alice")
    _, page_b = worker_page(browser, play_server, "bob")
    for page in (page_a, page_b):
        page.set_viewport_size({"width": 1280, "height": 900})
    page_a.goto(lobby_url)
    expect(page_a.locator("#lobby-status")).to_have_text("Waiting for a partner…")
    page_b.goto(lobby_url)
    for page in (page_a, page_b):
        page.wait_for_url(re.compile(r"/play/game/\d+/$"), timeout=15_000)
    game = Game.objects.get(pk=int(page_a.url.rstrip("/").rsplit("/", 1)[1]))
    speaker, listener = (page_a, page_b) if game.speaker == first else (page_b, page_a)

    expect(speaker.locator("#send")).to_be_enabled(timeout=15_000)
    panel = speaker.locator(".play-side").bounding_box()
    assert inside(speaker.locator("#send").bounding_box(), panel)
    assert inside(speaker.locator("#utterance").bounding_box(), panel)
    assert [t.strip() for t in speaker.locator("#frame-legend li").all_inner_texts()] == [
        "target: have your partner select it",
        "selected by your partner",
        "selected, and a target",
        "selected, but not a target",
    ]
    assert [t.strip() for t in listener.locator("#frame-legend li").all_inner_texts()] == [
        "selected by you",
        "not selected",
    ]

    for turn in range(10):
        speaker.fill("#utterance", f"message number {turn + 1}")
        speaker.press("#utterance", "Enter")
        expect(listener.locator("#submit")).to_be_enabled(timeout=15_000)
        listener.click("#submit")
        expect(speaker.locator("#history li")).to_have_count(turn + 1, timeout=15_000)
        expect(speaker.locator("#send")).to_be_enabled(timeout=15_000)
    numbers = speaker.locator("#history .turn-no")
    assert numbers.all_inner_texts() == [str(n) for n in range(1, 11)]
    tenth = numbers.nth(9)
    assert inside(tenth.bounding_box(), speaker.locator("#history").bounding_box())
    assert tenth.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert inside(
        speaker.locator("#send").bounding_box(), speaker.locator(".play-side").bounding_box()
    )
