"""List endpoints read a page in a fixed number of queries, however many rows it holds."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients import services
from kernel.tenancy import Actor
from tests.conftest import World
from tests.factories import ClientFactory, DatasetFactory, EngagementFactory, LocationFactory


def _grow(world: World, n: int) -> None:
    system = Actor.system(world.org)
    for _ in range(n):
        client = ClientFactory(organization=world.org)
        EngagementFactory(client=client)
        LocationFactory(organization=world.org, client=client)
        DatasetFactory(client=client, location=world.location, owner=world.lead)
        DatasetFactory(client=world.client, location=world.location, owner=world.lead)
        services.grant_create(
            actor=system, grantee=world.lead, client=client, permission="view", reason="n"
        )
    for _ in range(n):
        services.api_token_issue(user=world.admin)
        services.api_token_issue(user=world.lead)


def _count(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["count"] >= 2
    return len(queries)


# (url, queries for an admin, queries for a granted lead). The lead pays two more: its
# guardian object permissions, then which of those clients are in its organization.
PINNED = [
    ("/api/v1/clients/", 3, 5),
    ("/api/v1/engagements/", 3, 5),
    ("/api/v1/locations/", 3, 5),
    ("/api/v1/datasets/", 3, 5),
    ("/api/v1/grants/", 3, 5),
    ("/api/v1/members/", 3, None),
    ("/api/v1/tokens/", 3, 5),
]


@pytest.mark.parametrize(("url", "admin_queries", "lead_queries"), PINNED)
def test_list_query_count_is_pinned(
    world: World, as_user: Any, url: str, admin_queries: int, lead_queries: int | None
) -> None:
    _grow(world, 2)
    first = {"admin": _count(as_user(world.admin), url)}
    if lead_queries is not None:
        first["lead"] = _count(as_user(world.lead), url)
    _grow(world, 6)
    assert _count(as_user(world.admin), url) == first["admin"] == admin_queries
    if lead_queries is not None:
        assert _count(as_user(world.lead), url) == first["lead"] == lead_queries
