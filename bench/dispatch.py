"""Dispatcher benchmark section: find the due (dataset, target) pairs among 100,000 datasets.

Beat's every-minute tick asks `due_schedules(now)` for every due pair of every organization.
This section fills a fresh database with DATASETS datasets (each with its protection row and
one schedule), DUE_SHARE of them due, and times that query (median and worst of RUNS), counting
the SQL statements it takes. Goal: one query, under 1 s.

`section_dispatch(bench)` runs this module as a child process (`python -m bench.dispatch`)
against a fresh SQLite database in a temporary AGENCYOPS_VAR_DIR, or the throwaway PostgreSQL
database named by BENCH_DISPATCH_DATABASE_URL (it is migrated and filled).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

DATASETS = 100_000
DUE_SHARE = 0.01
RUNS = 7
GOAL_SECONDS = 1.0
BATCH = 5_000


def section_dispatch(bench: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as var_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        if os.environ.get("BENCH_DISPATCH_DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["BENCH_DISPATCH_DATABASE_URL"]
        env.update(AGENCYOPS_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="agencyops.settings")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.dispatch"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"dispatch bench failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["goals"] = {
        "dispatch_100k_one_query": result["queries"] == 1,
        "dispatch_100k_seconds<1": result["worst_seconds"] < GOAL_SECONDS,
    }
    if bench is not None:
        bench.sections["dispatch"] = result
    return result


def _fill(now: Any) -> int:
    """DATASETS datasets with protection and one schedule each; returns how many are due."""
    from backups.models import BackupPolicy, BackupSchedule, DatasetProtection
    from clients.models import Client, Dataset, StorageLocation
    from tests.factories import OrganizationFactory

    organization = OrganizationFactory(slug="bench-dispatch")
    client = Client.objects.create(organization=organization, name="Big client", slug="big")
    primary = StorageLocation.objects.create(
        organization=organization,
        name="Primary",
        kind="local",
        provider="filesystem",
        prefix="/srv/primary",
    )
    target = StorageLocation.objects.create(
        organization=organization,
        name="Target",
        kind="local",
        provider="filesystem",
        prefix="/srv/target",
    )
    policy = BackupPolicy.objects.create(organization=organization, name="Daily", frequency="daily")
    due_every = round(1 / DUE_SHARE)
    due = 0
    for start in range(0, DATASETS, BATCH):
        datasets = Dataset.objects.bulk_create(
            Dataset(
                organization=organization,
                client=client,
                name=f"dataset {index:06d}",
                kind="raw_client_data",
                location=primary,
                path=f"d/{index}",
            )
            for index in range(start, min(start + BATCH, DATASETS))
        )
        DatasetProtection.objects.bulk_create(
            DatasetProtection(organization=organization, dataset=dataset, policy=policy)
            for dataset in datasets
        )
        schedules = []
        for offset, dataset in enumerate(datasets):
            is_due = (start + offset) % due_every == 0
            due += is_due
            when = now - timedelta(minutes=5) if is_due else now + timedelta(hours=6)
            schedules.append(
                BackupSchedule(
                    organization=organization, dataset=dataset, location=target, next_due_at=when
                )
            )
        BackupSchedule.objects.bulk_create(schedules)
    return due


def _measure() -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from backups.services import due_schedules

    call_command("migrate", verbosity=0)
    now = timezone.now()
    started = time.perf_counter()
    expected = _fill(now)
    fill_seconds = time.perf_counter() - started
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    timings = []
    queries = 0
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            found = [(s.dataset_id, s.location_id) for s in due_schedules(now)]
            timings.append(time.perf_counter() - started)
        queries = len(captured.captured_queries)
        if len(found) != expected:
            raise RuntimeError(f"found {len(found)} due pairs, expected {expected}")
    return {
        "database": connection.vendor,
        "datasets": DATASETS,
        "due": expected,
        "queries": queries,
        "median_seconds": round(statistics.median(timings), 4),
        "worst_seconds": round(max(timings), 4),
        "fill_seconds": round(fill_seconds, 1),
    }


if __name__ == "__main__":
    from kernel.tenancy import system_scope

    # The child is the operator's process, like a worker running the measured services.
    with system_scope():
        print(json.dumps(_measure()))
