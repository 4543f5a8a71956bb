"""The access-log API and pages: scoped like everything else, filterable, exportable, with a
pinned number of queries per page."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kernel.tenancy import Actor
from lifecycle.services import access_event_payload, access_events_append
from tests.conftest import World
from tests.lifecycle.conftest import append_events

URL = "/api/v1/access-events/"


@pytest.fixture
def logged(world: World) -> World:
    system = Actor.system(world.org)
    old = timezone.now() - timedelta(days=3)
    access_events_append(
        [
            access_event_payload(organization=world.org, action="restore", actor=system,
                                 dataset=world.dataset, occurred_at=old),
            access_event_payload(organization=world.org, action="grant",
                                 actor=world.actor(world.admin), client=world.client_b),
            access_event_payload(organization=world.org, action="login", user=world.lead),
            access_event_payload(organization=world.other_org, action="restore", actor=None,
                                 dataset=world.other_dataset),
        ]
    )  # fmt: skip
    return world


def _actions(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["action"] for e in response.json()["results"]]


def test_scoping_by_role(logged: World, as_user: Any) -> None:
    w = logged
    assert _actions(as_user(w.owner).get(URL)) == ["login", "grant", "restore"]  # newest first
    assert _actions(as_user(w.auditor).get(URL)) == ["login", "grant", "restore"]
    assert _actions(as_user(w.lead).get(URL)) == ["restore"]  # client A only
    assert _actions(as_user(w.ungranted_lead).get(URL)) == []
    assert _actions(as_user(w.other_admin).get(URL)) == ["restore"]  # their own organization
    assert str(w.other_dataset.public_id) not in as_user(w.owner).get(URL).content.decode()
    assert as_user(w.member).get(URL).status_code == 403
    assert as_user(None).get(URL).status_code == 401
    assert as_user(w.auditor).post(URL, {}).status_code in (403, 405)


def test_filters(logged: World, as_user: Any) -> None:
    api = as_user(logged.admin)
    assert _actions(api.get(URL, {"client": str(logged.client_b.public_id)})) == ["grant"]
    assert _actions(api.get(URL, {"dataset": str(logged.dataset.public_id)})) == ["restore"]
    assert _actions(api.get(URL, {"actor": "admin"})) == ["grant"]
    assert _actions(api.get(URL, {"action": "login"})) == ["login"]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert _actions(api.get(URL, {"since": since})) == ["login", "grant"]
    assert _actions(api.get(URL, {"until": since})) == ["restore"]
    assert api.get(URL, {"action": "nonsense"}).status_code == 400
    assert api.get(URL, {"client": "not-a-uuid"}).status_code == 400


def test_event_body(logged: World, as_user: Any) -> None:
    (event,) = as_user(logged.admin).get(URL, {"action": "grant"}).json()["results"]
    assert event["actor"] == "admin"
    assert event["actor_kind"] == "user"
    assert event["client"] == str(logged.client_b.public_id)
    assert event["seq"] == 2
    assert len(event["hash"]) == len(event["prev_hash"]) == 64


@pytest.mark.parametrize("url", [URL + "?format=csv", URL + "export.csv"])
def test_csv_export_streams_the_same_scoped_rows(logged: World, as_user: Any, url: str) -> None:
    append_events(logged.org, 1, actor_label="=HYPERLINK(evil)", actor_kind="user")
    response = as_user(logged.lead).get(url)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["seq", "occurred_at", "action", "actor_kind", "actor"]
    assert [r[2] for r in rows[1:]] == ["restore"]
    admin_rows = b"".join(as_user(logged.admin).get(url).streaming_content).decode()
    assert "'=HYPERLINK(evil)" in admin_rows  # a formula is defused for spreadsheets
    assert as_user(logged.member).get(url).status_code == 403


def _count(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_is_pinned(world: World, as_user: Any) -> None:
    append_events(world.org, 3, dataset=world.dataset)
    first = (_count(as_user(world.admin), URL), _count(as_user(world.lead), URL))
    append_events(world.org, 40, dataset=world.dataset)
    # admin: session user + membership + count + page; the lead two more (its grants)
    assert (_count(as_user(world.admin), URL), _count(as_user(world.lead), URL)) == first == (3, 5)


def test_pages_show_the_client_and_dataset_logs(logged: World, client: Any) -> None:
    client.force_login(logged.lead)
    page = client.get(f"/clients/{logged.client.public_id}/access-log/")
    assert page.status_code == 200
    assert "Restored data" in page.content.decode()
    detail = client.get(f"/clients/{logged.client.public_id}/").content.decode()
    assert f"/clients/{logged.client.public_id}/access-log/" in detail
    dataset_page = client.get(f"/datasets/{logged.dataset.public_id}/access-log/")
    assert "Restored data" in dataset_page.content.decode()
    assert (
        f"/datasets/{logged.dataset.public_id}/access-log/"
        in client.get(f"/datasets/{logged.dataset.public_id}/").content.decode()
    )
    assert client.get(f"/clients/{logged.client_b.public_id}/access-log/").status_code == 404
    client.force_login(logged.member)
    assert client.get(f"/clients/{logged.client.public_id}/access-log/").status_code == 403
    client.force_login(logged.other_admin)
    assert client.get(f"/datasets/{logged.dataset.public_id}/access-log/").status_code == 404
