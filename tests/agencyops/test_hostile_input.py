"""Hostile input at the edges: password guessing, cross-site form posts, headers that keep the
pages from being framed or fed foreign scripts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client as BrowserClient
from django.urls import URLPattern, URLResolver, get_resolver

from kernel.headers import CONTENT_SECURITY_POLICY
from tests.conftest import World

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Any:
    cache.clear()
    yield
    cache.clear()


def _sign_in(browser: BrowserClient, username: str, password: str, ip: str = "203.0.113.5") -> Any:
    return browser.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sign_in_is_refused_with_429_after_five_failures_even_with_the_right_password(
    world: World, settings: Any
) -> None:
    world.lead.set_password(PASSWORD)
    world.lead.save()
    browser = BrowserClient()
    for _ in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT):
        response = _sign_in(browser, world.lead.username, "guess")
        assert response.status_code == 200  # the form again, with its error
        assert b"Please enter a correct username and password" in response.content

    response = _sign_in(browser, world.lead.username, PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert 0 < int(response["Retry-After"]) <= settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    assert "_auth_user_id" not in browser.session

    # The same account from another address, and another account from this one, still work.
    assert (
        _sign_in(BrowserClient(), world.lead.username, PASSWORD, ip="198.51.100.7").status_code
        == 302
    )
    world.admin.set_password(PASSWORD)
    world.admin.save()
    assert _sign_in(BrowserClient(), world.admin.username, PASSWORD).status_code == 302


def test_the_lock_lifts_after_the_window(world: World, settings: Any) -> None:
    from agencyops import signin

    address = "203.0.113.9"
    start = 1_000_000.0
    for step in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT):
        signin.signin_failed("Lead", address, now=start + step)
    assert signin.signin_wait_seconds("lead", address, now=start + 10) > 0  # case-insensitive
    window = settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    assert signin.signin_wait_seconds("lead", address, now=start + window + 5) == 0


def test_one_address_guessing_many_accounts_is_stopped(world: World, settings: Any) -> None:
    settings.AGENCYOPS_SIGNIN_ADDRESS_LIMIT = 8
    browser = BrowserClient()
    for index in range(8):
        assert _sign_in(browser, f"user{index}", "guess").status_code == 200
    world.lead.set_password(PASSWORD)
    world.lead.save()
    assert _sign_in(browser, world.lead.username, PASSWORD).status_code == 429


def test_a_success_clears_the_account_counter(world: World, settings: Any) -> None:
    world.lead.set_password(PASSWORD)
    world.lead.save()
    for _ in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT - 1):
        _sign_in(BrowserClient(), world.lead.username, "guess")
    assert _sign_in(BrowserClient(), world.lead.username, PASSWORD).status_code == 302
    for _ in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT - 1):
        assert _sign_in(BrowserClient(), world.lead.username, "guess").status_code == 200


def _page_patterns() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.append((route, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return [(route, view) for route, view in found if not route.startswith(("api/", "admin/"))]


def test_no_page_is_exempt_from_csrf() -> None:
    pages = _page_patterns()
    assert len(pages) >= 8
    exempt = [route for route, view in pages if getattr(view, "csrf_exempt", False)]
    assert exempt == []


def test_a_cross_site_form_post_is_refused(world: World) -> None:
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(world.admin)
    response = browser.post(
        f"/clients/{world.client.public_id}/datasets/new/", {"name": "Forged", "kind": "docs"}
    )
    assert response.status_code == 403
    assert not world.client.datasets.filter(name="Forged").exists()
    # The API with a session cookie is held to the same rule (a token needs no cookie).
    api = BrowserClient(enforce_csrf_checks=True)
    api.force_login(world.admin)
    response = api.post(
        "/api/v1/clients/", {"name": "Forged client"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_pages_send_the_security_headers(world: World) -> None:
    anonymous = BrowserClient()
    browser = BrowserClient()
    browser.force_login(world.admin)
    for client, url in (
        (anonymous, "/login/"),
        (browser, "/"),
        (browser, f"/clients/{world.client.public_id}/"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 200_000 + "]" * 200_000,  # deeper than the parser's recursion limit
        '{"a":' * 40 + "1" + "}" * 40,  # parses, but deeper than any request needs
    ],
    ids=["recursion", "forty-levels"],
)
def test_deeply_nested_json_is_a_400_not_a_500(world: World, as_user: Any, body: str) -> None:
    response = as_user(world.admin).generic(
        "POST", "/api/v1/clients/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:200]
    assert "nests deeper than 32 levels" in response.json()["detail"]


def test_a_body_of_wrong_shape_gets_field_messages(world: World, as_user: Any) -> None:
    response = as_user(world.admin).post("/api/v1/clients/", [1, 2, 3], format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
