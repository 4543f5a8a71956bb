"""Hostile query strings on every page: each GET page the route matrix knows, asked by an
organization admin with every query parameter a page reads set to values no form would send
(not a UUID, another organization's object, a path out of the snapshot, a huge offset). Each
answer is a page or a clear 4xx, never a 5xx (tests/conftest.py also fails any test that sees
one), and another organization's rows are never shown."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.agencyops.test_page_access import (
    CALLERS,
    FOREIGN,
    PAGES,
    PARAMETERS,
    Inventory,
    inventory,
)

__all__ = ["inventory"]

# Every query parameter a page reads (grep request.GET in */pages and */views.py).
NAMES = ("client", "dataset", "engagement", "target", "path", "state", "kind", "offset", "drop")


def _hostile(inv: Inventory) -> list[dict[str, str]]:
    foreign = {
        kind: next(str(r.obj.public_id) for r in inv.rows[kind] if r.marker == FOREIGN)
        for kind in ("client", "dataset", "engagement")
    }
    return [
        dict.fromkeys(NAMES, "not-a-uuid"),
        {**dict.fromkeys(NAMES, ""), **foreign},
        {
            "path": "../../etc/passwd",
            "offset": "-5",
            "state": "x" * 300,
            "target": foreign["client"],
        },
        {"offset": "99999999999999999999", "path": "/" * 50, "kind": "\x00"},
    ]


@pytest.mark.django_db
def test_every_page_answers_hostile_queries_without_a_server_error(inventory: Inventory) -> None:
    caller = inventory.callers["admin"]
    levels = CALLERS["admin"].levels
    wrong: list[tuple[Any, ...]] = []
    asked = 0
    for name, page in sorted(PAGES.items()):
        if page.method != "GET":
            continue
        if page.param is None:
            url = reverse(name)
        else:
            param = next(p for p, kind in PARAMETERS.items() if kind == page.param)
            row = next(r for r in inventory.rows[page.param] if r.marker in levels)
            url = reverse(name, kwargs={param: row.obj.public_id})
        for query in _hostile(inventory):
            response = caller.get(url, query)
            asked += 1
            if response.status_code >= 500:
                wrong.append((name, query, response.status_code))
            elif FOREIGN in response.content.decode(errors="replace"):
                wrong.append((name, query, "shows another organization's rows"))
    assert asked >= 40
    assert wrong == [], wrong
