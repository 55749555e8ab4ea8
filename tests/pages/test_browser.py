"""Pages in headless Chromium with every request off this machine refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_api_docs_render_their_operations_without_internet(live_server, browser):
    make_user("rita", role="researcher")
    page = browser.new_page()
    page.set_default_timeout(20_000)
    refused: list[str] = []

    def only_localhost(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_localhost)
    page.goto(f"{live_server.url}/accounts/login/?next=/api/docs/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert page.locator(".swagger-ui .opblock").count() > 10
    expect(page.locator(".swagger-ui .title")).to_contain_text("ReSpect study platform API")
    assert refused == []
