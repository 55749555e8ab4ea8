"""A researcher sets up crowd work: batches and game tasks from the pages and the API (one
validation path, errors next to the field), pay with a currency, and the preview as a worker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from annotation import creation
from annotation.earnings import payments_by_worker
from annotation.models import (
    AnnotationBatch,
    Assignment,
    Consent,
    CrowdSession,
    CrowdTask,
    QuizAttempt,
)
from annotation.selectors import NO_COMPLETION_CODE, completion
from annotation.survey import submit_game
from annotation.validation import InputError
from games.models import Study, Worker
from tests.factories import make_study, make_system, make_user

from .conftest import add_games, annotate, arrive, make_batch, make_quiz

pytestmark = pytest.mark.django_db
CODE_REQUIRED = "is required for a Prolific task: workers are sent back to Prolific with it"


@pytest.fixture
def researcher(client):
    client.force_login(make_user("res", role="researcher"))
    return client


def batch_form(of_system, **changes) -> dict[str, object]:
    return {
        "name": "page batch",
        "study": of_system.round.study.pk,
        "round": "0",
        "system": "B-FFT",
        "games": "2",
        "redundancy_fraction": "0.5",
        "redundancy_count": "3",
        "gold_interval": "0",
        "timeout_minutes": "30",
        "seed": "1",
        "pay_per_turn": "0.06",
        "pay_per_error_turn": "0.08",
        "pay_per_game": "0.25",
        "pay_per_minute": "0.10",
        "task.platform": "prolific",
        "task.prolific_completion_code": "PAGE1",
        "task.prolific_study_id": "",
        "task.mturk_sandbox": "true",
        "task.currency": "GBP",
        "task.games_per_session": "2",
        "task.quiz": "",
        "task.guidelines": "Read every turn.",
    } | changes


def field_errors(response) -> dict[str, str]:
    return {f.name: f.error for f in response.context["fields"] if f.error}


# --- the rules, in annotation.creation ------------------------------------------------------


def test_a_prolific_task_without_a_completion_code_is_refused_and_nothing_is_created(system):
    add_games(system, 2)
    with pytest.raises(InputError) as caught:
        creation.create_batch(
            study=system.round.study, round_index=0, system_name="B-FFT", name="b", games=2
        )
    assert (caught.value.field, caught.value.message) == ("prolific_completion_code", CODE_REQUIRED)
    assert not AnnotationBatch.objects.exists() and not CrowdTask.objects.exists()


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"platform": "mturk", "currency": "GBP"}, "currency", "MTurk pays in USD only"),
        ({"platform": "fiverr"}, "platform", "must be one of prolific, mturk"),
        ({"currency": "JPY"}, "currency", "must be one of GBP, USD, EUR"),
        ({"prolific_completion_code": "bad code!"}, "prolific_completion_code",
         "must be 1-64 letters, digits, '-' or '_'"),
    ],
)  # fmt: skip
def test_task_settings_are_refused_with_the_field_and_reason(system, options, field, message):
    with pytest.raises(InputError) as caught:
        creation.create_task(
            name="t", round_=system.round, **({"prolific_completion_code": "C1"} | options)
        )
    assert (caught.value.field, caught.value.message) == (field, message)
    assert not CrowdTask.objects.exists()


def test_an_mturk_task_needs_no_completion_code_and_pays_in_dollars(system):
    task = creation.create_task(name="t", round_=system.round, platform="mturk")
    assert (task.platform, task.currency, task.prolific_completion_code) == ("mturk", "USD", "")


@pytest.mark.parametrize(
    "field", ["pay_per_turn", "pay_per_error_turn", "pay_per_game", "pay_per_minute"]
)
def test_negative_batch_pay_is_refused(system, field):
    with pytest.raises(InputError) as caught:
        make_batch(system, 1, **{field: Decimal("-0.01")})
    assert (caught.value.field, caught.value.message) == (field, "must not be negative")
    assert not AnnotationBatch.objects.exists()


def test_a_game_task_sets_the_studys_live_pay_or_changes_nothing(system):
    study = system.round.study
    with pytest.raises(InputError):
        creation.create_game_task(name="live", round_=system.round, pay_per_game=Decimal("1.10"))
    study.refresh_from_db()
    assert study.base_pay == Decimal("0.81") and not CrowdTask.objects.exists()
    task = creation.create_game_task(
        name="live",
        round_=system.round,
        pay_per_game=Decimal("1.10"),
        pay_per_minute=Decimal("0.25"),
        prolific_completion_code="LIVE1",
        currency="EUR",
    )
    study.refresh_from_db()
    assert (study.base_pay, study.waiting_pay_per_minute) == (Decimal("1.10"), Decimal("0.25"))
    assert (task.kind, task.currency, task.round_id) == ("game", "EUR", system.round.pk)


# --- the batch page and the API share the serializer ----------------------------------------


def test_the_batch_form_offers_the_rounds_and_systems_that_exist(researcher, system):
    make_system(system.round.study, 1, "T-RL")
    make_system(system.round.study, 0, "CONTROL")
    page = researcher.get("/annotation/")
    fields = {f.name: f for f in page.context["fields"]}
    assert fields["round"].choices == [("0", "round 0"), ("1", "round 1")]
    assert fields["system"].choices == [("B-FFT", "B-FFT"), ("CONTROL", "CONTROL")]
    assert fields["system"].value == "B-FFT"
    assert page.context["round_systems"] == {
        str(system.round.study.pk): {"0": ["B-FFT", "CONTROL"], "1": ["T-RL"]}
    }


def test_a_link_from_the_round_board_preselects_study_round_and_system(researcher, system):
    study = system.round.study
    make_system(study, 1, "T-RL")
    make_system(study, 1, "CONTROL")
    make_study("a study listed first")
    page = researcher.get("/annotation/", {"study": study.pk, "round": 1, "system": "T-RL"})
    fields = {f.name: f for f in page.context["fields"]}
    assert (fields["study"].value, fields["round"].value, fields["system"].value) == (
        str(study.pk),
        "1",
        "T-RL",
    )
    assert fields["system"].choices == [("CONTROL", "CONTROL"), ("T-RL", "T-RL")]
    unknown = researcher.get("/annotation/", {"study": study.pk, "round": 1, "system": "B-X"})
    assert {f.name: f for f in unknown.context["fields"]}["system"].value == "CONTROL"


def test_a_batch_page_without_a_completion_code_is_refused_next_to_the_field(researcher, system):
    add_games(system, 2)
    response = researcher.post(
        "/annotation/", batch_form(system, **{"task.prolific_completion_code": ""})
    )
    assert response.status_code == 400
    assert field_errors(response) == {"task.prolific_completion_code": CODE_REQUIRED}
    html = response.content.decode()
    assert (
        f'<span class="field-error" id="field-task-prolific-completion-code-error">{CODE_REQUIRED}'
        in html
    )
    assert 'value="page batch"' in html  # what was typed is kept
    assert not AnnotationBatch.objects.exists() and not CrowdTask.objects.exists()


def test_the_batch_page_names_each_bad_field_with_the_serializer_message(researcher, system):
    add_games(system, 2)
    bad = {
        "name": "",
        "games": "0",
        "redundancy_fraction": "2",
        "redundancy_count": "1",
        "gold_interval": "-1",
        "pay_per_turn": "-0.01",
        "pay_per_minute": "0.001",
        "task.currency": "JPY",
        "task.games_per_session": "0",
        "task.quiz": "999",
    }
    response = researcher.post("/annotation/", batch_form(system, **bad))
    assert response.status_code == 400
    assert field_errors(response) == {
        "name": "This field may not be blank.",
        "games": "Ensure this value is greater than or equal to 1.",
        "redundancy_fraction": "Ensure this value is less than or equal to 1.",
        "redundancy_count": "Ensure this value is greater than or equal to 2.",
        "gold_interval": "Ensure this value is greater than or equal to 0.",
        "pay_per_turn": "Ensure this value is greater than or equal to 0.",
        "pay_per_minute": "Ensure that there are no more than 2 decimal places.",
        "task.currency": '"JPY" is not a valid choice.',
        "task.games_per_session": "Ensure this value is greater than or equal to 1.",
        "task.quiz": 'Invalid pk "999" - object does not exist.',
    }
    assert not AnnotationBatch.objects.exists()


def test_refusals_of_the_service_land_on_their_field(researcher, system):
    add_games(system, 2)
    wrong_system = researcher.post("/annotation/", batch_form(system, system="T-RL"))
    assert field_errors(wrong_system) == {"system": "round 0 has no system 'T-RL'"}
    too_many = researcher.post("/annotation/", batch_form(system, games="9"))
    assert field_errors(too_many) == {"games": "9 requested but only 2 games are eligible"}
    dollars = researcher.post(
        "/annotation/", batch_form(system, **{"task.platform": "mturk", "task.currency": "GBP"})
    )
    assert field_errors(dollars) == {"task.currency": "MTurk pays in USD only"}
    assert not AnnotationBatch.objects.exists()


def test_the_batch_page_creates_the_batch_and_shows_pay_with_its_currency(researcher, system):
    add_games(system, 2)
    quiz = make_quiz()
    response = researcher.post("/annotation/", batch_form(system, **{"task.quiz": str(quiz.pk)}))
    batch = AnnotationBatch.objects.get()
    assert response["Location"] == f"/annotation/batches/{batch.pk}/"
    task = batch.task
    assert (task.platform, task.currency, task.prolific_completion_code) == (
        "prolific",
        "GBP",
        "PAGE1",
    )
    assert (task.quiz, task.guidelines, task.games_per_session) == (quiz, "Read every turn.", 2)
    assert (batch.pay_per_game, batch.pay_per_minute) == (Decimal("0.25"), Decimal("0.10"))
    assert batch.created_by.username == "res"
    detail = researcher.get(response["Location"]).content.decode()
    assert (
        "pay 0.06 GBP per turn, 0.08 GBP per turn with an error, 0.25 GBP per game, "
        "0.10 GBP per minute" in detail
    )
    assert f'href="/annotation/tasks/{task.pk}/preview/consent/"' in detail
    listing = researcher.get("/annotation/").content.decode()
    assert "0.06 GBP / 0.08 GBP" in listing and "preview as a worker" in listing


def test_the_api_refuses_a_prolific_batch_without_a_completion_code(system):
    add_games(system, 2)
    api = APIClient()
    api.force_login(make_user("res", role="researcher"))
    body = {"name": "b", "study": system.round.study.pk, "round": 0, "system": "B-FFT", "games": 2}
    response = api.post("/annotation/api/batches/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": CODE_REQUIRED, "field": "prolific_completion_code"}
    body["task"] = {"prolific_completion_code": "API1", "currency": "EUR"}
    assert api.post("/annotation/api/batches/", body, format="json").status_code == 201
    assert AnnotationBatch.objects.get().task.currency == "EUR"


# --- game tasks from the pages --------------------------------------------------------------


def game_task_form(of_system, **changes) -> dict[str, object]:
    return {
        "name": "live round 0",
        "round": str(of_system.round.pk),
        "pay_per_game": "0.90",
        "pay_per_minute": "0.15",
        "platform": "prolific",
        "prolific_completion_code": "LIVE1",
        "mturk_sandbox": "true",
        "currency": "GBP",
        "games_per_session": "3",
        "quiz": "",
        "guidelines": "",
    } | changes


def test_the_game_task_page_creates_a_task_for_a_round(researcher, system):
    refused = researcher.post(
        "/annotation/game-tasks/", game_task_form(system, prolific_completion_code="")
    )
    assert refused.status_code == 400
    assert field_errors(refused) == {"prolific_completion_code": CODE_REQUIRED}
    assert not CrowdTask.objects.exists()
    response = researcher.post("/annotation/game-tasks/", game_task_form(system))
    task = CrowdTask.objects.get()
    assert response["Location"] == f"/annotation/game-tasks/{task.pk}/"
    assert (task.kind, task.games_per_session, task.prolific_completion_code) == (
        "game",
        3,
        "LIVE1",
    )
    study = Study.objects.get()
    assert (study.base_pay, study.waiting_pay_per_minute) == (Decimal("0.90"), Decimal("0.15"))
    detail = researcher.get(response["Location"]).content.decode()
    assert "pay 0.90 GBP per game, waiting 0.15 GBP per minute" in detail
    assert f'href="/annotation/tasks/{task.pk}/preview/consent/"' in detail
    listing = researcher.get("/annotation/game-tasks/").content.decode()
    assert '<td class="num">0.90 GBP</td>' in listing


# --- preview as a worker --------------------------------------------------------------------


def test_the_preview_walks_a_workers_pages_and_writes_nothing(researcher, system):
    batch = make_batch(system, 1, task_options={"quiz": make_quiz()})
    base = f"/annotation/tasks/{batch.task.pk}/preview"
    consent = researcher.get(f"{base}/consent/").content.decode()
    assert 'id="preview-banner"' in consent and f'action="{base}/guidelines/"' in consent
    guidelines = researcher.get(f"{base}/guidelines/").content.decode()
    assert f'id="to-quiz" href="{base}/quiz/"' in guidelines
    quiz = researcher.get(f"{base}/quiz/").content.decode()
    assert "Who sees the targets?" in quiz and f'action="{base}/work/"' in quiz
    work = researcher.get(f"{base}/work/")
    assert 'data-preview="1"' in work.content.decode()
    state = work.context["state"]
    assert (state["status"], state["game"]["step"]["utterance"]) == ("annotating", "the bird")
    assert [
        model.objects.count() for model in (CrowdSession, Worker, Consent, QuizAttempt, Assignment)
    ] == [0, 0, 0, 0, 0]


def test_a_task_without_a_quiz_previews_the_guidelines_then_the_work(researcher, system):
    task = creation.create_task(name="live", round_=system.round, prolific_completion_code="L1")
    base = f"/annotation/tasks/{task.pk}/preview"
    guidelines = researcher.get(f"{base}/guidelines/").content.decode()
    assert f'id="to-work" href="{base}/work/"' in guidelines
    assert researcher.get(f"{base}/quiz/").status_code == 404
    assert "Next: the game lobby" in researcher.get(f"{base}/work/").content.decode()
    assert not CrowdSession.objects.exists()


def test_only_researchers_may_preview(client, system):
    batch = make_batch(system, 1)
    url = f"/annotation/tasks/{batch.task.pk}/preview/consent/"
    assert client.get(url)["Location"].startswith("/accounts/login/")
    client.force_login(make_user("plain"))
    assert client.get(url).status_code == 403


# --- completion and pay ---------------------------------------------------------------------


def test_a_session_of_a_task_without_a_code_is_never_sent_to_prolific_with_an_empty_cc(system):
    batch = make_batch(system, 1)
    CrowdTask.objects.filter(pk=batch.task.pk).update(prolific_completion_code="")  # older task
    session = arrive(CrowdTask.objects.get(), "W1")
    assert completion(session) == {"kind": "message", "message": NO_COMPLETION_CODE}


def test_pay_per_game_and_per_minute_are_paid_on_submitted_games(system):
    batch = make_batch(
        system, 1, pay_per_game=Decimal("0.50"), pay_per_minute=Decimal("0.12"), timeout_minutes=2
    )
    session = arrive(batch.task, "W1")
    answers = [("select A", "yes"), ("select B", "yes"), ("select C", "")]
    assignment = annotate(session, answers, submit=False)
    unsubmitted = payments_by_worker()[0]
    assert (unsubmitted.annotation, unsubmitted.total) == (Decimal("0.00"), Decimal("0.00"))
    answers = list(assignment.answers.order_by("turn__index"))
    seconds = [(30.0, 60.0), (45.0, 600.0), (15.0, None)]  # 600 s counts as the 2-minute time-out
    for answer, (phase1, phase2) in zip(answers, seconds, strict=True):
        answer.phase1_seconds, answer.phase2_seconds = phase1, phase2
        answer.save(update_fields=["phase1_seconds", "phase2_seconds"])
    submit_game(session, {"assignment": assignment.pk})
    row = payments_by_worker()[0]
    # 3 turns x 0.06 + one game x 0.50 + (30+60+45+120+15) s = 4.5 min x 0.12 = 0.54
    assert row.annotation == Decimal("1.22") and row.turns == 3
