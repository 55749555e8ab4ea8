"""End to end in headless Chromium: a Prolific worker passes the quiz, annotates a three-turn
game with a reload in the middle, and is sent back to Prolific with the completion code; a
researcher sets up a batch on the page (refused without a completion code) that a worker does."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from annotation.models import AnnotationBatch, Assignment, CrowdSession, TurnAnnotation
from tests.factories import make_user

from .conftest import add_games, make_batch, make_quiz

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def orm(function):
    """Run ORM code off this thread: Playwright's sync API keeps an event loop running here,
    and Django refuses ORM calls in a thread with a running loop."""

    def run():
        try:
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def task(system):
    quiz = make_quiz(pass_mark=100, max_attempts=2)
    batch = make_batch(
        system, 1, task_options={"quiz": quiz, "prolific_completion_code": "E2ECODE"}
    )
    return batch.task


def test_prolific_worker_annotates_a_game_with_a_reload(task, live_server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.set_default_timeout(15_000)
    page.route(
        "https://app.prolific.com/**",
        lambda route: route.fulfill(status=200, body="Prolific: submission complete"),
    )
    page.goto(
        f"{live_server.url}/annotation/prolific/{task.key}/"
        "?PROLIFIC_PID=e2eworker&STUDY_ID=STUDY1&SESSION_ID=e2esession"
    )

    page.check("#agree")
    page.click("#consent-submit")
    page.click("#to-quiz")
    page.check("text=speaker")
    page.check("label:has-text('yes') >> input")
    page.click("#quiz-submit")

    # turn 1, phase 1: nothing selected yet; pick A and confirm with Enter
    page.wait_for_selector("#annotate:not([hidden])")
    assert page.inner_text("#utterance") == "the bird"
    assert page.inner_text("#where").endswith("turn 1 of 3")
    assert page.inner_text("#my-action") == "nothing (no change)"
    page.click("#grid [data-letter=A]")
    assert page.inner_text("#my-action") == "select A"
    page.keyboard.press("Enter")
    # phase 2: the listener's action is revealed with the follow-up; answer with key 1
    page.wait_for_selector("#phase2:not([hidden])")
    assert "The listener did: select A" in page.inner_text("#reveal")
    assert page.inner_text("#follow-up") == "now the boat"
    page.keyboard.press("1")

    # turn 2 starts from the listener's selection (A); the annotator picks C (the listener B)
    page.wait_for_selector("#phase1:not([hidden])")
    assert page.inner_text("#where").endswith("turn 2 of 3")
    assert page.get_attribute("#grid [data-letter=A]", "aria-pressed") == "true"
    page.keyboard.press("c")
    page.click("#confirm")
    page.wait_for_selector("#phase2:not([hidden])")

    page.reload()  # resume where we were: phase 2 of turn 2
    page.wait_for_selector("#phase2:not([hidden])")
    assert "You said: select C. The listener did: select B." in page.inner_text("#reveal")
    assert page.inner_text("#follow-up") == "and the house"
    page.click("#options button[data-value=yes_wrong]")

    # the last turn has no phase 2: straight to the review
    page.wait_for_selector("#phase1:not([hidden])")
    page.click("#grid [data-letter=C]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review:not([hidden])")
    assert page.locator("#review-rows tr").count() == 3
    page.fill("#comment", "clear game")
    page.click("#submit-game")

    page.wait_for_selector("#code-box:not([hidden])")
    assert page.inner_text("#code") == "E2ECODE"
    page.wait_for_url(re.compile(r"^https://app\.prolific\.com/submissions/complete\?cc=E2ECODE$"))

    def stored():
        answers = TurnAnnotation.objects.order_by("turn__index")
        return (
            [(a.annotated_action, a.satisfaction) for a in answers],
            list(Assignment.objects.values_list("status", "comment")),
            list(CrowdSession.objects.values_list("status", flat=True)),
        )

    assert orm(stored) == (
        [("select A", "yes"), ("select C", "yes_wrong"), ("select C", "")],
        [("submitted", "clear game")],
        ["completed"],
    )


# --- a batch set up from the researcher's page ----------------------------------------------


def log_in_as_researcher(browser, live_server):
    orm(lambda: make_user("res", role="researcher"))
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/?next=/annotation/")
    page.fill("input[name=username]", "res")
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/annotation/")
    return page


def test_a_batch_without_a_completion_code_is_refused_on_the_page(system, live_server, browser):
    orm(lambda: add_games(system, 2))
    page = log_in_as_researcher(browser, live_server)
    assert page.input_value("#field-system") == "B-FFT"  # a choice of what exists
    page.fill("#field-name", "no code")
    page.fill("#field-games", "2")
    page.click("#create-batch")
    error = page.locator("#field-task-prolific-completion-code-error")
    # expect waits for the refused page to replace the one the form was sent from
    expect(error).to_have_text(
        "is required for a Prolific task: workers are sent back to Prolific with it"
    )
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(192, 57, 43)"
    assert page.input_value("#field-name") == "no code"
    assert orm(lambda: AnnotationBatch.objects.count()) == 0


def test_a_prolific_batch_created_on_the_page_is_completed_by_a_worker(
    system, live_server, browser
):
    orm(lambda: (add_games(system, 1), make_quiz(pass_mark=100, max_attempts=2)))
    page = log_in_as_researcher(browser, live_server)
    page.fill("#field-name", "from the page")
    page.fill("#field-games", "1")
    page.fill("#field-redundancy-fraction", "0")
    page.fill("#field-task-prolific-completion-code", "WEBCODE")
    page.select_option("#field-task-quiz", label="q")
    page.fill("#field-task-guidelines", "Answer both questions for every turn.")
    page.click("#create-batch")
    page.wait_for_selector("#preview-link")
    assert "0.06 GBP per turn" in page.inner_text("#batch-facts")
    key = orm(lambda: AnnotationBatch.objects.get().task.key)

    worker = browser.new_context().new_page()
    worker.set_default_timeout(15_000)
    worker.route(
        "https://app.prolific.com/**",
        lambda route: route.fulfill(status=200, body="Prolific: submission complete"),
    )
    worker.goto(
        f"{live_server.url}/annotation/prolific/{key}/"
        "?PROLIFIC_PID=pageworker&STUDY_ID=STUDY1&SESSION_ID=pagesession"
    )
    worker.check("#agree")
    worker.click("#consent-submit")
    assert "Answer both questions for every turn." in worker.inner_text("main")
    worker.click("#to-quiz")
    worker.check("text=speaker")
    worker.check("label:has-text('yes') >> input")
    worker.click("#quiz-submit")
    for letter, satisfied in (("A", True), ("B", True), ("C", False)):
        worker.wait_for_selector("#phase1:not([hidden])")
        worker.click(f"#grid [data-letter={letter}]")
        worker.keyboard.press("Enter")
        if satisfied:
            worker.wait_for_selector("#phase2:not([hidden])")
            worker.keyboard.press("1")
    worker.wait_for_selector("#review:not([hidden])")
    worker.click("#submit-game")
    worker.wait_for_url(
        re.compile(r"^https://app\.prolific\.com/submissions/complete\?cc=WEBCODE$")
    )
    assert orm(lambda: list(CrowdSession.objects.values_list("status", flat=True))) == ["completed"]
