"""Lifecycle list endpoints read a page in a fixed number of queries, however many rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lifecycle.models import DeletionApproval, DeletionRequest, LegalHold, RetentionObligation
from tests.conftest import World


def _grow(world: World, n: int) -> None:
    for i in range(n):
        request = DeletionRequest.objects.create(
            organization=world.org,
            client=world.client,
            dataset=world.dataset,
            engagement=world.engagement,
            scope="dataset",
            reason=f"r{i}",
            requested_by=world.lead,
            plan={"datasets": [{"pk": 1, "id": "x", "name": "d"}], "locations": [], "keys": []},
        )
        DeletionApproval.objects.create(request=request, decided_by=world.admin, decision="approve")
        RetentionObligation.objects.create(
            organization=world.org,
            client=world.client,
            engagement=world.engagement,
            kind="delete_after_engagement",
            days_after_end=30,
            source="contract",
            drafted_request=request,
        )
        LegalHold.objects.create(
            organization=world.org, client=world.client, dataset=world.dataset, reason="x"
        )


def _count(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["count"] >= 2
    return len(queries)


# (url, admin queries, granted lead queries): the page's count, rows, and prefetches.
PINNED = [
    ("/api/v1/deletion-requests/", 4, 6),
    ("/api/v1/obligations/", 3, 5),
    ("/api/v1/legal-holds/", 3, 5),
]


@pytest.mark.parametrize(("url", "admin_queries", "lead_queries"), PINNED)
def test_lifecycle_list_query_count_is_pinned(
    world: World, as_user: Any, url: str, admin_queries: int, lead_queries: int
) -> None:
    _grow(world, 2)
    first = (_count(as_user(world.admin), url), _count(as_user(world.lead), url))
    _grow(world, 4)
    second = (_count(as_user(world.admin), url), _count(as_user(world.lead), url))
    assert first == second == (admin_queries, lead_queries)
