"""Every page has a CSP; crowd pages (and only they) may be framed by MTurk."""

from __future__ import annotations

import re

import pytest

from annotation.tokens import session_token
from tests.annotation.conftest import arrive, make_batch, system  # noqa: F401  (fixture)
from tests.deploy.helpers import ROOT
from tests.factories import make_study, make_system

pytestmark = pytest.mark.django_db

PAGE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
CROWD_POLICY = PAGE_POLICY | {
    "form-action": "'self' https://*.mturk.com",
    "frame-ancestors": "'self' https://*.mturk.com",
}


def policy(response) -> dict[str, str]:
    """The response's CSP as directive → sources (django-csp does not keep their order)."""
    directives = (
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    return {name: sources for name, sources in directives}


def test_researcher_pages_have_the_csp_and_may_not_be_framed(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert policy(response) == PAGE_POLICY
    assert response["X-Frame-Options"] == "DENY"


def test_annotation_pages_of_workers_may_be_framed_by_mturk(client, system):  # noqa: F811
    batch = make_batch(system, 1)
    token = session_token(arrive(batch.task, "W1"))
    for url in (
        f"/annotation/mturk/{batch.task.key}/",
        f"/annotation/w/{token}/guidelines/",
        f"/annotation/w/{token}/survey/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert policy(response) == CROWD_POLICY, url
        assert "X-Frame-Options" not in response, url


def test_lobby_and_game_pages_may_be_framed_by_mturk(client):
    round_ = make_system(make_study("framed"), 0, "HH").round
    for url in (f"/play/lobby/{round_.pk}/", "/play/game/1/", "/play/game/1/done/"):
        response = client.get(url)
        assert policy(response) == CROWD_POLICY, url
        assert "X-Frame-Options" not in response, url


def test_the_api_docs_load_swagger_from_the_app_under_the_default_policy(client):
    from tests.factories import make_user

    client.force_login(make_user("docs", role="researcher"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert policy(response)["script-src"] == "'self'"
    html = response.content.decode()
    assert "<script>" not in html and "cdn.jsdelivr.net" not in html
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+=", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.django_db
def test_the_api_schema_and_docs_need_a_login(client):
    from tests.factories import make_user

    for url in ("/api/schema/", "/api/docs/"):
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (
            302,
            f"/accounts/login/?next={url}",
        )
    client.force_login(make_user("reader", role="researcher"))
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_a_disallowed_host_is_logged_as_one_line(client, caplog, settings):
    settings.ALLOWED_HOSTS = ["study.example.org"]
    with caplog.at_level("WARNING"):
        response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert record.getMessage().startswith("Invalid HTTP_HOST header: 'evil.example'.")
    assert record.exc_info is None and record.exc_text is None
