"""Who may do what: every page and endpoint, for each role, including the denials."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.tokens import session_token
from annotation.work_queue import claim_next
from games.workers import SESSION_KEY
from tests.factories import make_user

from .conftest import arrive, make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(system):
    batch = make_batch(system, 2)
    session = arrive(batch.task, "W1")
    claim_next(session)
    return batch, session


def endpoints(batch, session):
    """(method, url, body, lowest role allowed) for every researcher and admin endpoint."""
    b = batch.pk
    return [
        ("get", "/annotation/", None, "researcher"),
        ("get", f"/annotation/batches/{b}/", None, "researcher"),
        ("get", "/annotation/api/batches/", None, "researcher"),
        ("post", "/annotation/api/batches/", {}, "researcher"),
        ("get", f"/annotation/api/batches/{b}/", None, "researcher"),
        ("post", f"/annotation/api/batches/{b}/gold/", {}, "researcher"),
        ("post", "/annotation/api/quizzes/", {}, "researcher"),
        ("post", "/annotation/api/game-tasks/", {}, "researcher"),
        ("get", f"/annotation/api/batches/{b}/agreement/", None, "admin"),
        ("get", "/annotation/api/payments/", None, "admin"),
        ("post", "/annotation/api/bonuses/", {}, "admin"),
        ("post", f"/annotation/api/sessions/{session.pk}/pay/", {}, "admin"),
        ("get", "/annotation/payments/", None, "admin"),
        ("post", f"/annotation/workers/{session.worker_id}/platform-id/", {}, "admin"),
    ]


def call(client, method, url, body):
    if method == "get":
        return client.get(url)
    return client.post(url, body or {}, format="json")


def test_anonymous_users_and_crowdworkers_are_refused_everywhere(world, client):
    batch, session = world
    worker = APIClient()
    worker.credentials(HTTP_X_WORKER_TOKEN=session_token(session))
    cookie_worker = APIClient()
    cookie_worker.get(
        f"/annotation/prolific/{batch.task.key}/",
        {"PROLIFIC_PID": "W1", "STUDY_ID": "STUDY1", "SESSION_ID": "S-W1"},
    )
    assert cookie_worker.session[SESSION_KEY] == session.worker_id
    for method, url, body, _ in endpoints(batch, session):
        for who in (APIClient(), worker, cookie_worker):
            response = call(who, method, url, body)
            if url.startswith("/annotation/api/"):
                assert response.status_code == 403, (url, response.status_code)
            else:  # pages send anonymous visitors to the login page
                assert response.status_code == 302, url
                assert response["Location"].startswith("/accounts/login/")


def test_researchers_are_refused_admin_endpoints_only(world):
    batch, session = world
    researcher = APIClient()
    researcher.force_login(make_user("res", role="researcher"))
    for method, url, body, role in endpoints(batch, session):
        status = call(researcher, method, url, body).status_code
        if role == "admin":
            assert status == 403, url
        else:
            assert status in (200, 400), (url, status)  # allowed (empty bodies are refused)


def test_admins_reach_everything(world):
    batch, session = world
    admin = APIClient()
    admin.force_login(make_user("root", role="admin"))
    for method, url, body, _ in endpoints(batch, session):
        assert call(admin, method, url, body).status_code in (200, 400), url


def test_plain_logged_in_users_are_refused(world):
    batch, session = world
    nobody = APIClient()
    nobody.force_login(make_user("plain"))
    for method, url, body, _ in endpoints(batch, session):
        assert call(nobody, method, url, body).status_code == 403, url


def test_researchers_and_admins_cannot_use_the_worker_api(world):
    researcher = APIClient()
    researcher.force_login(make_user("root", role="admin"))
    for url in ("/annotation/api/work/", "/annotation/api/work/answer/"):
        assert researcher.get(url).status_code in (401, 403)


def test_a_worker_sees_only_their_own_current_game(world):
    batch, session = world
    other = arrive(batch.task, "W2")
    theirs = claim_next(other)
    mine = APIClient()
    mine.credentials(HTTP_X_WORKER_TOKEN=session_token(session))
    state = mine.get("/annotation/api/work/").json()
    assert state["game"]["id"] != theirs.pk
    assert "W2" not in str(state) and other.worker.id_hash not in str(state)
    refused = mine.post(
        "/annotation/api/work/answer/",
        {"assignment": theirs.pk, "turn": 0, "phase": 1, "action": ""},
        format="json",
    )
    assert refused.status_code == 403
