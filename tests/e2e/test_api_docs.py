"""`/api/docs/` in chromium under the site's CSP: Swagger UI's files come from
drf-spectacular-sidecar (this site's static files), so the page renders the API's title and
operations instead of the blank page a CDN-hosted UI gave (the CSP blocked it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_from_the_package(page: Any, live_server: Any, artifacts: Path) -> None:
    user = UserFactory(username="reader")
    MembershipFactory(user=user, role="admin")
    outside: list[str] = []
    blocked: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((live_server.url, "data:"))
            else None
        ),
    )
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, live_server.url, "reader")
    response = page.goto(live_server.url + "/api/docs/")
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("AgencyOps API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.screenshot(path=str(artifacts / "api-docs.png"))
    assert outside == []
    assert blocked == []
