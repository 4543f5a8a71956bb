"""Helpers of the access-log tests: append events as the worker does, tamper as an attacker
with database access would (raw SQL: the ORM refuses to change access events)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from kernel.tenancy import Actor
from lifecycle.models import AccessEvent
from lifecycle.services import access_event_payload, access_events_append


def append_events(organization: Any, n: int, **fields: Any) -> list[AccessEvent]:
    fields.setdefault("action", "restore")
    fields.setdefault("actor", Actor.system(organization))
    payloads = [
        access_event_payload(organization=organization, details={"n": i}, **fields)
        for i in range(n)
    ]
    return access_events_append(payloads)


def raw_sql(sql: str, params: list[Any]) -> None:
    table = AccessEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """`with run_on_commit():` runs the on-commit callbacks (the enqueue) at the block's end."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
