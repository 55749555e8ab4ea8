"""Crowd arrival by the platforms' URL contracts, consent, guidelines and the quiz."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import creation, services
from annotation.models import Consent, CrowdSession, QuizAttempt
from annotation.tokens import session_from_token, session_token
from games.models import Worker
from games.workers import SESSION_KEY, decrypt_platform_id, hash_worker_id

from .conftest import arrive, make_batch, make_quiz, token_of, worker_client

pytestmark = pytest.mark.django_db
PROLIFIC = {
    "PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4",
    "STUDY_ID": "STUDY1",
    "SESSION_ID": "sess-1",
}


@pytest.fixture
def batch(system):
    return make_batch(system, 2)


def test_prolific_arrival_hashes_the_id_and_leads_to_consent(client, batch, ticking_signatures):
    response = client.get(f"/annotation/prolific/{batch.task.key}/", PROLIFIC)
    session = CrowdSession.objects.get()
    token = token_of(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == f"/annotation/w/{token}/"
    assert session_from_token(token) == session
    assert client.get(response["Location"])["Location"] == f"/annotation/w/{token}/consent/"
    worker = Worker.objects.get()
    assert worker.id_hash == hash_worker_id("prolific", PROLIFIC["PROLIFIC_PID"])
    assert PROLIFIC["PROLIFIC_PID"].encode() not in bytes(worker.encrypted_platform_id)
    assert decrypt_platform_id(worker) == PROLIFIC["PROLIFIC_PID"]
    assert (session.external_id, session.platform_study_id) == ("sess-1", "STUDY1")
    assert client.session[SESSION_KEY] == worker.pk


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PROLIFIC_PID": ""}, "PROLIFIC_PID is missing"),
        ({"PROLIFIC_PID": "<script>x</script>"}, "PROLIFIC_PID must be 1-64 letters"),
        ({"PROLIFIC_PID": "a" * 65}, "PROLIFIC_PID must be 1-64 letters"),
        ({"SESSION_ID": ""}, "SESSION_ID is missing"),
        ({"STUDY_ID": "OTHER"}, "STUDY_ID does not match"),
    ],
)
def test_bad_prolific_arrivals_are_refused_and_store_nothing(client, system, change, message):
    batch = make_batch(system, 1, task_options={"prolific_study_id": "STUDY1"})
    response = client.get(f"/annotation/prolific/{batch.task.key}/", PROLIFIC | change, follow=True)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<script>x" not in response.content.decode()
    assert not Worker.objects.exists() and not CrowdSession.objects.exists()


def test_a_session_id_of_another_participant_is_refused(client, batch):
    client.get(f"/annotation/prolific/{batch.task.key}/", PROLIFIC)
    response = client.get(
        f"/annotation/prolific/{batch.task.key}/",
        PROLIFIC | {"PROLIFIC_PID": "someoneelse"},
        follow=True,
    )
    assert response.status_code == 403
    assert CrowdSession.objects.count() == 1


def test_unknown_or_closed_tasks_are_refused(client, batch):
    assert client.get("/annotation/prolific/nope/", PROLIFIC, follow=True).status_code == 404
    batch.task.is_open = False
    batch.task.save()
    closed = client.get(f"/annotation/prolific/{batch.task.key}/", PROLIFIC, follow=True)
    assert closed.status_code == 410


def test_consent_is_required_before_the_survey(client, batch):
    session = arrive(batch.task, "W1", consent=False)
    token = session_token(session)
    survey = client.get(f"/annotation/w/{token}/survey/")
    assert survey["Location"] == f"/annotation/w/{token}/"
    api = worker_client(session).get("/annotation/api/work/")
    assert api.status_code == 403 and api.json()["field"] == "consent"
    refused = client.post(f"/annotation/w/{token}/consent/", {})
    assert refused.status_code == 400 and not Consent.objects.exists()
    accepted = client.post(f"/annotation/w/{token}/consent/", {"agree": "yes"})
    # without a quiz the worker still reads the guidelines before the survey
    assert accepted["Location"] == f"/annotation/w/{token}/guidelines/"
    guidelines = client.get(accepted["Location"]).content.decode()
    assert "<h1>Guidelines</h1>" in guidelines
    assert f'id="to-work" href="/annotation/w/{token}/"' in guidelines
    assert client.get(f"/annotation/w/{token}/")["Location"] == f"/annotation/w/{token}/survey/"


def test_the_quiz_must_be_passed_once_and_attempts_are_limited(client, system):
    quiz = make_quiz(pass_mark=100, max_attempts=2)
    batch = make_batch(system, 1, task_options={"quiz": quiz})
    session = arrive(batch.task, "W1")
    token = session_token(session)
    assert client.get(f"/annotation/w/{token}/")["Location"] == f"/annotation/w/{token}/guidelines/"
    assert worker_client(session).get("/annotation/api/work/").json()["field"] == "quiz"
    first, second = quiz.questions.all()
    wrong = client.post(f"/annotation/w/{token}/quiz/", {f"q{first.pk}": 0, f"q{second.pk}": 0})
    assert wrong.status_code == 200 and "You scored 50%" in wrong.content.decode()
    missing = client.post(f"/annotation/w/{token}/quiz/", {f"q{first.pk}": 0})
    assert missing.status_code == 400 and QuizAttempt.objects.count() == 1
    right = client.post(f"/annotation/w/{token}/quiz/", {f"q{first.pk}": 0, f"q{second.pk}": 1})
    assert right["Location"] == f"/annotation/w/{token}/"
    assert list(QuizAttempt.objects.values_list("score", "passed")) == [(50, False), (100, True)]
    # passing carries over to a later session of the same worker
    later = arrive(batch.task, "W1", "S-later")
    assert worker_client(later).get("/annotation/api/work/").status_code == 200


def test_a_worker_out_of_attempts_is_stopped(client, system):
    quiz = make_quiz(pass_mark=100, max_attempts=1)
    batch = make_batch(system, 1, task_options={"quiz": quiz})
    session = arrive(batch.task, "W1")
    token = session_token(session)
    first, second = quiz.questions.all()
    client.post(f"/annotation/w/{token}/quiz/", {f"q{first.pk}": 1, f"q{second.pk}": 0})
    assert client.get(f"/annotation/w/{token}/").status_code == 403
    again = client.post(f"/annotation/w/{token}/quiz/", {f"q{first.pk}": 0, f"q{second.pk}": 1})
    assert again.status_code == 403 and QuizAttempt.objects.count() == 1


def test_a_bad_token_is_refused(client, batch):
    assert client.get("/annotation/w/forged/survey/").status_code == 403


def test_mturk_preview_shows_the_task_and_stores_nothing(client, system):
    batch = make_batch(system, 1, task_options={"mturk_title": "Tangram survey"})
    response = client.get(
        f"/annotation/mturk/{batch.task.key}/",
        {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1"},
    )
    assert response.status_code == 200
    assert "Accept the HIT" in response.content.decode()
    assert "X-Frame-Options" not in response
    assert "frame-ancestors 'self' https://*.mturk.com" in response["Content-Security-Policy"]
    assert not Worker.objects.exists()


MTURK = {
    "assignmentId": "ASSIGN1",
    "hitId": "HIT1",
    "workerId": "AWORKER1",
    "turkSubmitTo": "https://workersandbox.mturk.com",
}


def test_mturk_arrival_and_completion_posts_back_to_the_sandbox(client, system, ticking_signatures):
    batch = make_batch(system, 1)
    response = client.get(f"/annotation/mturk/{batch.task.key}/", MTURK)
    session = CrowdSession.objects.get()
    assert session_from_token(token_of(response["Location"])) == session
    assert (session.platform, session.external_id, session.platform_study_id) == (
        "mturk",
        "ASSIGN1",
        "HIT1",
    )
    services.give_consent(session)
    services.complete_session(session)
    state = worker_client(session).get("/annotation/api/work/").json()
    assert state["completion"] == {
        "kind": "mturk_submit",
        "action": "https://workersandbox.mturk.com/mturk/externalSubmit",
        "fields": {"assignmentId": "ASSIGN1", "done": "1"},
    }


@pytest.mark.parametrize("submit_to", ["https://evil.example", "https://www.mturk.com", ""])
def test_mturk_arrival_refuses_a_foreign_submit_host(client, system, submit_to):
    batch = make_batch(system, 1)  # a sandbox task
    response = client.get(
        f"/annotation/mturk/{batch.task.key}/", MTURK | {"turkSubmitTo": submit_to}, follow=True
    )
    assert response.status_code == 400
    assert "turkSubmitTo must be the MTurk sandbox submission host" in response.content.decode()
    assert not CrowdSession.objects.exists()


def test_production_tasks_post_back_to_production(client, system):
    batch = make_batch(system, 1, task_options={"mturk_sandbox": False})
    response = client.get(
        f"/annotation/mturk/{batch.task.key}/", MTURK | {"turkSubmitTo": "https://www.mturk.com"}
    )
    assert response.status_code == 302


def test_survey_page_embeds_the_state_and_works_in_a_frame(client, batch):
    session = arrive(batch.task, "W1")
    response = client.get(f"/annotation/w/{session_token(session)}/survey/")
    assert response.status_code == 200
    assert response.context["state"]["status"] == "annotating"
    assert 'id="survey-state"' in response.content.decode()
    assert "X-Frame-Options" not in response


def test_a_game_task_sends_the_worker_to_the_lobby_after_consent_and_quiz(client, system):
    quiz = make_quiz(pass_mark=0)
    task = creation.create_task(
        name="live round", round_=system.round, quiz=quiz, prolific_completion_code="LIVE1"
    )
    response = client.get(f"/annotation/prolific/{task.key}/", PROLIFIC)
    token = response["Location"].split("/")[3]
    session = CrowdSession.objects.get()
    services.give_consent(session)
    services.grade_quiz(session.worker, quiz, {str(q.pk): 0 for q in quiz.questions.all()})
    entry = client.get(f"/annotation/w/{token}/")
    assert entry.status_code == 302
    assert entry["Location"] == reverse("games:lobby", kwargs={"round_id": system.round.pk})
    assert client.session[SESSION_KEY] == session.worker_id


def test_a_game_task_without_a_lobby_route_says_so(client, system, settings):
    settings.ROOT_URLCONF = "tests.annotation.urls_without_lobby"
    task = creation.create_task(
        name="live round", round_=system.round, prolific_completion_code="LIVE1"
    )
    session = arrive(task, "W1")
    response = client.get(f"/annotation/w/{session_token(session)}/")
    assert response.status_code == 503
    assert "lobby is not open yet" in response.content.decode()


def test_a_worker_arriving_at_a_full_batch_hears_it_before_consent(client, system):
    from annotation import work_queue

    full = make_batch(system, 1)
    first = arrive(full.task, "first-worker")
    assert work_queue.claim_next(first) is not None
    response = client.get(f"/annotation/prolific/{full.task.key}/", PROLIFIC)
    entry = client.get(response["Location"])
    assert entry.status_code == 409
    assert (
        "There is no work left in this task for you: every game of its batch has all the "
        "annotators it needs."
    ) in entry.content.decode()
    late = CrowdSession.objects.exclude(pk=first.pk).get()
    assert not Consent.objects.filter(worker=late.worker).exists()
