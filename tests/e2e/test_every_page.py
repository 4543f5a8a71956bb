"""Every page a signed-in person can open, in chromium, checked the same two ways:

- axe-core (from npm, `node_modules/`, pinned by package-lock.json) finds no serious or
  critical accessibility violation;
- at 390 px wide (a phone), the document is no wider than the viewport: nothing scrolls
  sideways, the header's Log out stays reachable.

The pages and their objects come from the route/page matrix (tests/agencyops/
test_page_access.py): the same inventory, every GET page the URL resolver knows, opened as the
organization's admin (not Django staff) on an object of its own organization. A page added to
the product is checked here without a line of its own. Screenshots at both widths are saved
as artifacts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse

from clients.services.invitations import invitation_send
from kernel.tenancy import actor_for_user
from tests.agencyops.test_page_access import (
    CALLERS,
    PAGES,
    PARAMETERS,
    Inventory,
    inventory,
)
from tests.e2e.conftest import log_in
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

__all__ = ["inventory"]

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CALLER = "admin"  # an organization admin, not Django staff
BLOCKING = ("serious", "critical")
# The answer of a page with a query string, where it is not 200 (see _urls).
EXPECTED = {"deletion-request-new": 409}
# GET answers that are not pages: progress JSON for progress.js, signed JSON and PDF files, a
# snapshot's file. Anything else that is not HTML fails the sweep.
NOT_HTML = frozenset(
    {
        "run-progress",
        "restore-progress",
        "client-evidence-json",
        "client-evidence-pdf",
        "deletion-certificate-json",
        "deletion-certificate-pdf",
        "snapshot-download",
    }
)


def _urls(inv: Inventory) -> list[tuple[str, str]]:
    """(page name, url) of every GET page, on an object the admin sees."""
    levels = CALLERS[CALLER].levels
    found: list[tuple[str, str]] = []
    for name, page in sorted(PAGES.items()):
        if page.method != "GET":
            continue
        if page.param is None:
            found.append((name, reverse(name)))
            continue
        param = next(p for p, kind in PARAMETERS.items() if kind == page.param)
        row = next(r for r in inv.rows[page.param] if r.marker in levels)
        found.append((name, reverse(name, kwargs={param: row.obj.public_id})))
    # Pages whose query string makes another page of them: a form for one client (the
    # deletion request then previews its plan; the inventory's buckets point nowhere, so the
    # plan cannot list them and the page answers 409 saying so), the alerts filtered, the
    # costs of one client.
    client = next(r.obj for r in inv.rows["client"] if r.marker in levels)
    dataset = next(r.obj for r in inv.rows["dataset"] if r.marker in levels)
    for name, query in (
        ("deletion-request-new", f"client={client.public_id}"),
        ("deletion-request-new", f"client={client.public_id}&dataset={dataset.public_id}"),
        ("hold-new", f"client={client.public_id}"),
        ("obligation-new", f"client={client.public_id}"),
        ("alert-list", "state=acknowledged"),
        ("cost-overview", f"client={client.public_id}"),
    ):
        found.append((f"{name}?{query}", f"{reverse(name)}?{query}"))
    return found


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in result if v.get("impact") in BLOCKING]


def _describe(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in violations
    ]


def _check(page: Any, base: str, name: str, url: str, artifacts: Path) -> list[str]:
    """What is wrong with one page at both widths: its answer, axe's blocking violations, and
    at phone width a document wider than the viewport. A screenshot of each width is saved."""
    found: list[str] = []
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        response = page.goto(base + url)
        assert response is not None
        if response.status != EXPECTED.get(name.split("?")[0] if "?" in name else "", 200):
            found.append(f"{label}: HTTP {response.status}")
            continue
        shot = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        page.screenshot(path=str(artifacts / f"page-{shot}-{label}.png"), full_page=True)
        if label == "phone":
            wide, viewport_width = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            if wide > viewport_width:
                found.append(f"phone: document {wide} px wide in a {viewport_width} px viewport")
        found.extend(f"{label}: {line}" for line in _describe(_axe(page)))
    return found


def test_every_page_is_accessible_and_fits_a_phone(
    browser: Any, live_server: Any, inventory: Inventory, artifacts: Path
) -> None:
    if not AXE.exists():
        pytest.fail(
            f"axe-core is missing at {AXE}: `make test` installs it (npm ci from "
            "package-lock.json).",
            pytrace=False,
        )
    urls = _urls(inventory)
    assert len(urls) >= 10  # the matrix's GET pages: a sweep of nothing would pass
    # The CSP is lifted for this context only, so axe's script can be injected; the pages'
    # own scripts are files either way (tests/agencyops/test_templates.py).
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    problems: dict[str, Any] = {}
    try:
        log_in(page, live_server.url, "admin")
        for name, url in urls:
            # Downloads and a page script's JSON are answers, not pages (NOT_HTML); every other
            # GET answer must be a page. Asked for first with the same session, so the browser
            # never starts a download.
            if name in NOT_HTML:
                continue
            head = context.request.get(live_server.url + url)
            if not head.headers.get("content-type", "").startswith("text/html"):
                problems.setdefault(name, []).append(f"not a page: {head.headers}")
                continue
            wrong = _check(page, live_server.url, name, url, artifacts)
            if wrong:
                problems[name] = wrong
    finally:
        context.close()
    (artifacts / "every-page.json").write_text(json.dumps(problems, indent=2))
    assert set(PAGES) >= NOT_HTML, NOT_HTML - set(PAGES)  # a renamed download is noticed
    assert problems == {}, json.dumps(problems, indent=2)


def test_pages_without_an_account_are_accessible_and_fit_a_phone(
    browser: Any, live_server: Any, artifacts: Path
) -> None:
    """The pages a person opens before signing in: the login, an invitation's one-time link
    and the procurement reviewer's token form, checked like every other page."""
    organization = OrganizationFactory()
    owner = UserFactory(username="inviting-owner")
    MembershipFactory(organization=organization, user=owner, role="owner")
    actor = actor_for_user(owner)
    assert actor is not None
    links: list[str] = []

    def link_for(token: str) -> str:
        links.append(reverse("invitation-accept", args=[token]))
        return links[-1]

    invitation_send(actor=actor, email="new@example.com", role="member", link_for=link_for)
    urls = [("login", reverse("login")), ("invitation-accept", links[0])]
    urls.append(("evidence-open", reverse("evidence-open")))
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    problems: dict[str, Any] = {}
    try:
        for name, url in urls:
            wrong = _check(page, live_server.url, name, url, artifacts)
            if wrong:
                problems[name] = wrong
    finally:
        context.close()
    assert problems == {}, json.dumps(problems, indent=2)
