"""The hot queries use an index, not a scan of the whole table (the scale half of issue #8).

Each query is the one the code runs (dispatcher tick, access-log page, snapshot and run lists,
alerts). On PostgreSQL the planner is told to avoid sequential scans where any alternative
exists (`enable_seqscan = off`, this transaction only): a plan that still scans the table has no
index to use. On SQLite, EXPLAIN QUERY PLAN must name an index for the main table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from backups import selectors as backup_selectors
from backups.models import Alert, BackupRun, Snapshot
from backups.services import due_schedules
from lifecycle import selectors as lifecycle_selectors
from lifecycle.models import AccessEvent
from tests.conftest import World


def _plan(queryset: Any) -> str:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        return str(queryset.explain())


def _uses_index(plan: str, table: str) -> bool:
    if connection.vendor == "postgresql":
        return f"Seq Scan on {table}" not in plan and table in plan
    lines = [line for line in plan.splitlines() if re.search(rf"\b{table}\b", line)]
    return bool(lines) and all(
        "USING" in line and "INDEX" in line for line in lines if "SCAN" in line or "SEARCH" in line
    )


HOT: dict[str, tuple[str, Callable[[World], Any]]] = {
    "dispatcher: due schedules": (
        "backups_backupschedule",
        lambda w: due_schedules(timezone.now()),
    ),
    "access log page": (
        "lifecycle_accessevent",
        lambda w: lifecycle_selectors.access_event_list(actor=w.actor(w.admin))[:50],
    ),
    "access log of one dataset": (
        "lifecycle_accessevent",
        lambda w: lifecycle_selectors.access_event_list(actor=w.actor(w.admin)).filter(
            dataset=w.dataset
        )[:50],
    ),
    "snapshots of one dataset, newest first": (
        "backups_snapshot",
        lambda w: (
            backup_selectors.snapshot_list(actor=w.actor(w.admin))
            .filter(dataset=w.dataset)
            .order_by("-taken_at")[:50]
        ),
    ),
    "backup runs of one dataset": (
        "backups_backuprun",
        lambda w: (
            BackupRun.objects.visible_to(w.actor(w.admin))
            .filter(dataset=w.dataset)
            .order_by("-created_at")[:50]
        ),
    ),
    "open alerts": (
        "backups_alert",
        lambda w: Alert.objects.visible_to(w.actor(w.admin)).filter(state="open")[:50],
    ),
    "snapshots taken before a point in time": (
        "backups_snapshot",
        lambda w: Snapshot.objects.filter(
            dataset=w.dataset, taken_at__lte=timezone.now() - timedelta(days=1)
        ).order_by("-taken_at")[:1],
    ),
    "access events of an organization since a date": (
        "lifecycle_accessevent",
        lambda w: AccessEvent.objects.filter(organization=w.org, seq__gt=0).order_by("-seq")[:50],
    ),
}


@pytest.mark.parametrize("name", sorted(HOT))
def test_hot_query_uses_an_index(world: World, name: str) -> None:
    table, build = HOT[name]
    plan = _plan(build(world))
    assert _uses_index(plan, table), f"{name}:\n{plan}"
