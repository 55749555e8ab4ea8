"""Raw worker ids and worker tokens stay out of URLs that browsers keep, logs and caches."""

from __future__ import annotations

import io
import logging
import time

import pytest
from django.core import signing

from annotation.models import CrowdSession
from annotation.tokens import SALT, session_token
from config.log_redaction import RedactCrowdIds, redact
from games.models import Worker
from tests.annotation.conftest import arrive, make_batch, system, worker_client  # noqa: F401
from tests.factories import make_user

pytestmark = pytest.mark.django_db
PID = "5f1e2d3c4b5a69788796a5b4"
PROLIFIC = {"PROLIFIC_PID": PID, "STUDY_ID": "STUDY1", "SESSION_ID": "sess-1"}


class IssuedEarlier(signing.TimestampSigner):
    def __init__(self, seconds: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - self.seconds)


def token_issued(session: CrowdSession, seconds_ago: int) -> str:
    return IssuedEarlier(seconds_ago, salt=SALT).sign_object(session.pk)


def test_a_refused_arrival_redirects_to_a_url_without_the_ids(client, system):  # noqa: F811
    batch = make_batch(system, 1, task_options={"prolific_study_id": "STUDY1"})
    arrival = f"/annotation/prolific/{batch.task.key}/"
    response = client.get(arrival, PROLIFIC | {"STUDY_ID": "OTHER"})
    assert response.status_code == 302
    assert response["Location"].startswith("/annotation/refused/?reason=")
    assert PID not in response["Location"] and "sess-1" not in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 400
    assert "We could not start: STUDY_ID does not match this task&#x27;s Prolific study." in (
        page.content.decode()
    )
    assert not Worker.objects.exists()


def test_a_refusal_reason_cannot_be_forged(client):
    forged = signing.dumps({"message": "Send your password to x", "status": 400}, salt="other")
    response = client.get("/annotation/refused/", {"reason": forged})
    assert response.status_code == 400
    assert "This study link is not valid." in response.content.decode()
    assert "password" not in response.content.decode()


def test_an_mturk_preview_with_a_worker_id_redirects_to_the_bare_preview(client, system):  # noqa: F811
    batch = make_batch(system, 1)
    url = f"/annotation/mturk/{batch.task.key}/"
    response = client.get(
        url, {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1", "workerId": "AW1"}
    )
    assert (response.status_code, response["Location"]) == (302, url)
    assert client.get(url).status_code == 200


def test_worker_tokens_expire(client, system, settings):  # noqa: F811
    settings.WORKER_TOKEN_MAX_AGE = 3600
    session = arrive(make_batch(system, 1).task, "W1")
    fresh = token_issued(session, 3500)
    assert client.get(f"/annotation/w/{fresh}/survey/").status_code == 200
    stale = token_issued(session, 3700)
    page = client.get(f"/annotation/w/{stale}/survey/")
    assert page.status_code == 403
    assert "This link is not valid or has expired." in page.content.decode()
    api = worker_client(session)
    api.credentials(HTTP_X_WORKER_TOKEN=stale)
    assert api.get("/annotation/api/work/").status_code == 401


def test_redaction_of_ids_in_queries_and_tokens_in_paths():
    line = (
        "GET /annotation/prolific/K/?PROLIFIC_PID=5f1e&STUDY_ID=S1&SESSION_ID=s-1 200; "
        "GET /annotation/mturk/K/?assignmentId=A1&hitId=H1&workerId=AW1&turkSubmitTo=x; "
        "Forbidden: /annotation/w/MQ:1tX:abc/survey/?token=T1"
    )
    assert redact(line) == (
        "GET /annotation/prolific/K/?PROLIFIC_PID=<redacted>&STUDY_ID=S1&SESSION_ID=<redacted> "
        "200; GET /annotation/mturk/K/?assignmentId=<redacted>&hitId=H1&workerId=<redacted>"
        "&turkSubmitTo=x; Forbidden: /annotation/w/<redacted>/survey/?token=<redacted>"
    )


def test_request_logs_do_not_show_worker_tokens(client, system, settings):  # noqa: F811
    settings.WORKER_TOKEN_MAX_AGE = 60
    session = arrive(make_batch(system, 1).task, "W1")
    stale = token_issued(session, 120)
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactCrowdIds) for f in h.filters)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        assert client.get(f"/annotation/w/{stale}/survey/").status_code == 403
    finally:
        handler.setStream(previous)
    assert stream.getvalue() == "Forbidden: /annotation/w/<redacted>/survey/\n"
    assert session_token(session) not in stream.getvalue()


def test_the_page_revealing_a_raw_id_is_never_cached(client, system):  # noqa: F811
    session = arrive(make_batch(system, 1).task, "RAWID1")
    client.force_login(make_user("root", role="admin"))
    response = client.post(f"/annotation/workers/{session.worker_id}/platform-id/")
    assert "RAWID1" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
