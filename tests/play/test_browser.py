"""End to end in Chromium against a real daphne: two people play, and a person plays a model."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from games.models import ExitSurvey, Game

from . import helpers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop in this thread; the ORM calls of these tests run
    between its calls, never inside the loop."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def worker_page(browser, server, name: str, round_):
    worker = helpers.participant(round_, name)
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": helpers.session_cookie(worker), "url": server.url}]
    )
    return worker, context.new_page()


def test_two_people_are_paired_and_play_to_success(play_server, browser):
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "HH")
    lobby_url = f"{play_server.url}/play/lobby/{round_.pk}/"
    first, page_a = worker_page(browser, play_server, "alice", round_)
    second, page_b = worker_page(browser, play_server, "bob", round_)
    page_a.goto(lobby_url)
    expect(page_a.locator("#lobby-status")).to_have_text("Waiting for another player…")
    page_b.goto(lobby_url)
    for page in (page_a, page_b):
        page.wait_for_url(re.compile(r"/play/game/\d+/$"), timeout=15_000)
    game = Game.objects.select_related("config").get(speaker__in=[first, second])
    speaker, listener = (page_a, page_b) if game.speaker == first else (page_b, page_a)
    targets = list(game.config.targets)
    wrong = next(t for t in game.config.listener_order if t not in targets)

    expect(speaker.locator(".tangram.target")).to_have_count(len(targets))
    expect(listener.locator(".tangram.target")).to_have_count(0)
    expect(listener.locator("#timer-label")).to_have_text("Partner's turn:")
    speaker.fill("#utterance", "the odd one out")
    speaker.press("#utterance", "Enter")
    expect(listener.locator("#current")).to_have_text("“the odd one out”")
    listener.click(f'[data-tangram="{wrong}"]')
    expect(listener.locator(f'[data-tangram="{wrong}"].selected')).to_have_count(1)
    listener.click("#submit")
    # The speaker sees the wrong pick in red, then guides the listener to the targets.
    expect(speaker.locator(f'[data-tangram="{wrong}"].wrong')).to_have_count(1)
    speaker.fill("#utterance", "no, unselect that and pick the targets")
    speaker.press("#utterance", "Enter")
    expect(listener.locator("#current")).to_have_text("“no, unselect that and pick the targets”")
    for name in [wrong, *targets]:
        listener.click(f'[data-tangram="{name}"]')
    expect(listener.locator(".tangram.selected")).to_have_count(len(targets))
    listener.click("#submit")
    for page in (speaker, listener):
        expect(page.locator("#end-title")).to_have_text("Success!")
        expect(page.locator("#end-pay")).to_have_text("You earned $1.01 for this game.")
        expect(page.locator(".play-turn")).to_have_text("The game is over")
    expect(listener.locator("#current")).to_have_text("The game is over.")
    expect(speaker.locator(".tangram.correct")).to_have_count(len(targets))

    listener.check('input[name="satisfaction"][value="4"]')
    listener.check('input[name="comprehension"][value="5"]')
    listener.fill('textarea[name="comments"]', "fun")
    listener.click("#survey-submit")
    expect(listener.locator("#game-total")).to_have_text("$1.01")
    survey = ExitSurvey.objects.get(game=game)
    assert (survey.role, survey.satisfaction, survey.comprehension, survey.comments) == (
        "listener",
        4,
        5,
        "fun",
    )
    game.refresh_from_db()
    assert [t.utterance for t in game.turns.all()] == [
        "the odd one out",
        "no, unselect that and pick the targets",
    ]
    letter = dict(zip(game.config.listener_order, "ABCDEFGHIJ", strict=True))
    assert game.turns.get(index=0).action == f"select {letter[wrong]}"


def test_two_people_in_a_round_with_a_model_system_play_each_other(play_server, browser):
    helpers.tangrams()
    # config_seed 0 puts HH first in block 0: the first arrival waits for another player.
    round_ = helpers.round_with(helpers.study(), "HH", "CONTROL", config_seed=0)
    lobby_url = f"{play_server.url}/play/lobby/{round_.pk}/"
    first, page_a = worker_page(browser, play_server, "dora", round_)
    second, page_b = worker_page(browser, play_server, "emil", round_)
    page_a.goto(lobby_url)
    expect(page_a.locator("#lobby-status")).to_have_text("Waiting for another player…")
    page_b.goto(lobby_url)
    for page in (page_a, page_b):
        page.wait_for_url(re.compile(r"/play/game/\d+/$"), timeout=15_000)
    game = Game.objects.select_related("config", "system").get(speaker__in=[first, second])
    assert (game.system.name, {game.speaker, game.listener}) == ("HH", {first, second})
    speaker, listener = (page_a, page_b) if game.speaker == first else (page_b, page_a)
    targets = list(game.config.targets)

    # The grid's buttons stay the same elements whatever arrives (a click on a button that a
    # message replaces between mousedown and mouseup is lost).
    first_target = f'[data-tangram="{targets[0]}"]'
    # The grid is built when the game's first state arrives over the socket: wait for it.
    expect(listener.locator(first_target)).to_have_count(1)
    listener.eval_on_selector(first_target, "cell => { cell.dataset.marker = 'kept'; }")
    speaker.fill("#utterance", "the first one")
    speaker.press("#utterance", "Enter")
    expect(listener.locator("#current")).to_have_text("“the first one”")
    listener.click(first_target)
    listener.click("#submit")
    expect(listener.locator("#current")).to_have_text("Waiting for your partner's message…")
    expect(listener.locator(f"{first_target}.selected")).to_have_count(1)
    assert listener.eval_on_selector(first_target, "cell => cell.dataset.marker") == "kept"

    speaker.fill("#utterance", "and the others")
    speaker.press("#utterance", "Enter")
    expect(listener.locator("#current")).to_have_text("“and the others”")
    for name in targets[1:]:
        listener.click(f'[data-tangram="{name}"]')
    expect(listener.locator(".tangram.selected")).to_have_count(len(targets))
    listener.click("#submit")
    for page in (speaker, listener):
        expect(page.locator("#end-title")).to_have_text("Success!")
    game.refresh_from_db()
    assert (game.status, game.outcome, game.turns.count()) == ("ended", "successful", 2)


@pytest.mark.celery
def test_a_person_plays_against_the_random_policy_served_by_a_celery_worker(
    play_server, browser, celery_worker
):
    helpers.tangrams()
    study = helpers.study(turn_limit=3)
    round_ = helpers.round_with(study, "CONTROL")
    worker, page = worker_page(browser, play_server, "carol", round_)
    page.goto(f"{play_server.url}/play/lobby/{round_.pk}/")
    page.wait_for_url(re.compile(r"/play/game/\d+/$"), timeout=15_000)
    for turn in range(3):
        if page.locator("#end").is_visible():
            break
        expect(page.locator("#send")).to_be_enabled(timeout=15_000)
        expect(page.locator("#turn-no")).to_have_text(str(turn + 1))
        page.fill("#utterance", f"message {turn}")
        page.press("#utterance", "Enter")
        expect(page.locator("#send")).to_be_disabled()
        # The model answers on the gpu-live queue; the speaker sees its selection.
        # (expect, not wait_for_function: the pages' CSP forbids the eval it polls with)
        expect(page.locator("#history li")).to_have_count(turn + 1, timeout=20_000)
        next_turn = page.locator("#turn-no", has_text=re.compile(f"^{turn + 2}$"))
        expect(next_turn.or_(page.locator("#end:not([hidden])")).first).to_be_attached(
            timeout=20_000
        )
    expect(page.locator("#end")).to_be_visible(timeout=20_000)
    game = Game.objects.get(speaker=worker)
    assert game.status == "ended" and game.outcome in ("successful", "unsuccessful")
    turns = list(game.turns.all())
    assert 1 <= len(turns) <= 3
    for turn in turns:
        assert turn.selection_after is not None
        assert turn.action_reason != "model_timeout"
        # random: every non-empty selection of the 10 images is equally likely.
        assert turn.action_probability == pytest.approx(1 / 1023)
