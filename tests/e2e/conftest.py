"""Browser tests: Debian's chromium driven by Playwright against a live server.

- `live_server` (pytest-django) serves the pages from a thread of this process. It needs
  committed rows, so these tests use `transactional_db` like the worker integration tests: the
  SQLite test database is a file that the server thread and the Celery worker both open.
- `cluster` is the integration tests' fixture (real Celery processes on the test database),
  imported, not copied; `route_to_cluster` sends the tasks the pages enqueue to its broker.
- `page` is a fresh headless chromium page. A failing test leaves a screenshot in
  var/test-artifacts/ next to the ones the tests save on purpose.

No browser is ever downloaded: CI installs Debian's chromium, and a machine without it fails
here with a message saying so (a skipped browser test would hide a broken walk).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backups.integration.conftest import cluster
from tests.backups.integration.support import ROOT, Cluster
from tests.s3server import s3_endpoint

__all__ = ["cluster", "s3_endpoint"]

CHROMIUM = Path(os.environ.get("AGENCYOPS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "var" / "test-artifacts"
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password
# Generous: a backup on a busy CI machine waits for the worker to poll its broker first.
WAIT_MS = 120_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keeps each phase's report on the test item, so `page` knows at teardown if the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def browser(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless chromium for one test.

    Playwright's sync API keeps an asyncio loop running on this thread while it is started,
    and Django refuses ORM calls from a thread with a running loop. The test body needs the
    ORM (fixtures, checks), so the check is lifted for this test only, and Playwright is
    stopped at teardown before the database is flushed (this fixture depends on
    transactional_db, so it is torn down first)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium); "
            "set AGENCYOPS_CHROMIUM to use another chromium binary. No browser is downloaded.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
            opened.screenshot(path=str(artifacts / f"{name}-failure.png"), full_page=True)
        context.close()


@pytest.fixture
def route_to_cluster(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`route_to_cluster(cluster, task, ...)`: the tasks the pages enqueue (`delay_on_commit`)
    are published to the cluster's broker, where its worker takes them."""

    def route(started: Cluster, *tasks: Any) -> None:
        for task in tasks:

            def publish(*args: Any, _task: Any = task, **kwargs: Any) -> None:
                started.publish(_task, *args)

            monkeypatch.setattr(task, "delay", publish)

    return route


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Through the login form, as a person would: the dashboard asks for it first."""
    page.goto(base_url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
