"""Evidence benchmark section: the latency of GET /api/v1/clients/<id>/evidence/ for one client
with 1,000 datasets, 100,000 snapshots and 10,000 access events.

Requests go through Django's test client in this process (the whole stack: URL routing,
authentication, the view, the document's queries, signing, canonical rendering and the access
event), as the client's owner. The first request walks the whole access chain (once a day in
production) and is reported apart; then REQUESTS timed requests give the median and p95. The
process starts like the web process (agencyops.wsgi: URL patterns loaded, start-up objects
frozen out of the garbage collector's scans).
Between two requests the event the previous read recorded is appended to the chain outside
the clock, as a worker would, so each read verifies the chain's newest link like in service.

`section_evidence(bench)` runs this module as a child process (`python -m bench.evidence`)
against a fresh SQLite database in a temporary AGENCYOPS_VAR_DIR (never the developer's
database; BENCH_EVIDENCE_DATABASE_URL names a throwaway PostgreSQL database instead) and
stores its figures in `bench.sections["evidence"]`. Goal: p95 under 300 ms.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from unittest import mock

DATASETS = 1_000
SNAPSHOTS = 100_000  # 50 per dataset on each of its two targets
EVENTS = 10_000
REQUESTS = 50
GOAL_P95_MS = 300.0


def section_evidence(bench: Any) -> dict[str, Any]:
    """Run the measurement in a child process; record and return it."""
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as var_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        if os.environ.get("BENCH_EVIDENCE_DATABASE_URL"):  # migrated and filled: throwaway
            env["DATABASE_URL"] = os.environ["BENCH_EVIDENCE_DATABASE_URL"]
        env.update(AGENCYOPS_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="agencyops.settings")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.evidence"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"evidence bench failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["goals"] = {"evidence_p95_ms<300": result["p95_ms"] < GOAL_P95_MS}
    if bench is not None:
        bench.sections["evidence"] = result
    return result


def _fill() -> tuple[Any, Any, Any]:
    """One organization, its owner, and the client with everything the evidence reports."""
    from backups.services import policies_create_defaults
    from clients import services as clients_services
    from kernel.tenancy import Actor
    from tests.factories import UserFactory

    owner = UserFactory(username="bench-owner")
    org = clients_services.organization_create(name="Bench agency", owner=owner, slug="bench")
    actor = Actor.system(org)
    client = clients_services.client_create(actor=actor, name="Bench client")
    policies_create_defaults(org)
    primary, targets, policy = _storage(org)
    datasets = _datasets(org, client, primary, policy)
    _snapshots_and_drills(org, datasets, targets)
    _leads(actor, client)
    _access_events(org, actor, datasets)
    return org, owner, client


def _storage(org: Any) -> tuple[Any, list[Any], Any]:
    """A local primary and two S3 targets of the daily policy, each target with a posture
    audit and its finding: (primary, targets, policy)."""
    from backups.models import BackupPolicy, PolicyTarget, PostureAudit, PostureFinding
    from clients.models import StorageLocation

    primary = StorageLocation.objects.create(
        organization=org, name="Primary", kind="local", provider="filesystem", prefix="/srv/data"
    )
    targets = [
        StorageLocation.objects.create(
            organization=org,
            name=f"Target {name}",
            kind="s3",
            provider=provider,
            region=region,
            bucket=f"bench-{name}",
            prefix="backups",
        )
        for name, provider, region in (("a", "aws", "eu-west-1"), ("b", "backblaze", "us-west"))
    ]
    policy = BackupPolicy.objects.get(organization=org, default_for="daily")
    for position, target in enumerate(targets):
        PolicyTarget.objects.create(policy=policy, location=target, position=position)
        audit = PostureAudit.objects.create(
            organization=org, location=target, trigger="scheduled", facts={"versioning": "Enabled"}
        )
        PostureFinding.objects.create(
            organization=org,
            audit=audit,
            location=target,
            check_name="object_lock",
            severity="medium",
            message="Object lock is off.",
        )
    return primary, targets, policy


def _datasets(org: Any, client: Any, primary: Any, policy: Any) -> list[Any]:
    """DATASETS datasets of the client, each protected by the policy."""
    import secrets

    from backups.models import DatasetProtection
    from clients.models import Dataset

    datasets = Dataset.objects.bulk_create(
        Dataset(
            organization=org,
            client=client,
            name=f"dataset {i:04d}",
            kind="raw_client_data",
            contains_personal_data=i % 3 == 0,
            location=primary,
            path=f"datasets/{i:04d}",
        )
        for i in range(DATASETS)
    )
    DatasetProtection.objects.bulk_create(
        DatasetProtection(
            organization=org, dataset=d, policy=policy, wrapped_key=secrets.token_bytes(60)
        )
        for d in datasets
    )
    return datasets


def _snapshots_and_drills(org: Any, datasets: list[Any], targets: list[Any]) -> None:
    """SNAPSHOTS snapshots, six hours apart, spread evenly over the datasets and targets, and
    a succeeded restore drill of each dataset's newest snapshot."""
    from datetime import timedelta

    from django.utils import timezone

    from backups.models import RestoreRun, Snapshot

    now = timezone.now()
    per_target = SNAPSHOTS // DATASETS // len(targets)
    snapshots = Snapshot.objects.bulk_create(
        (
            Snapshot(
                organization=org,
                dataset=d,
                location=target,
                manifest_id=f"{d.pk}-{k}",
                taken_at=now - timedelta(hours=6 * k),
                files=100,
                bytes=10_000_000,
            )
            for d in datasets
            for target in targets
            for k in range(per_target)
        ),
        batch_size=5000,
    )
    newest = {s.dataset_id: s for s in snapshots if s.manifest_id.endswith("-0")}
    RestoreRun.objects.bulk_create(
        RestoreRun(
            organization=org,
            dataset=d,
            snapshot=newest[d.pk],
            destination_path=f"/scratch/{d.pk}",
            is_drill=True,
            status="succeeded",
            started_at=now - timedelta(days=3, minutes=5),
            finished_at=now - timedelta(days=3),
            measured_duration=timedelta(minutes=5),
            rto=d.rto,
            rto_met=True,
            files_verified=100,
        )
        for d in datasets
    )


def _leads(actor: Any, client: Any) -> None:
    """Twenty leads granted `view` on the client (the document lists who has access)."""
    from clients import services as clients_services
    from tests.factories import UserFactory

    for i in range(20):
        user = UserFactory(username=f"bench-lead-{i}")
        clients_services.membership_add(actor=actor, user=user, role="lead")
        clients_services.grant_create(
            actor=actor, grantee=user, client=client, permission="view", reason="bench"
        )


def _access_events(org: Any, actor: Any, datasets: list[Any]) -> None:
    """EVENTS access events on the datasets, appended to the chain 2,000 at a time."""
    from lifecycle.services import access_event_payload, access_events_append

    for start in range(0, EVENTS, 2000):
        access_events_append(
            access_event_payload(
                organization=org,
                action="view_dataset" if i % 2 else "restore",
                actor=actor,
                dataset=datasets[i % DATASETS],
                details={"i": i},
            )
            for i in range(start, min(start + 2000, EVENTS))
        )


@dataclass
class _Requests:
    """What the timed requests measured, and the last (untimed) response."""

    first_ms: float
    samples: list[float]
    cpu: list[float]
    full_gc: list[float]
    queries: int
    last: Any


def _measure() -> dict[str, Any]:
    _start_like_web()
    from django.db import connection

    started = time.perf_counter()
    org, owner, client = _fill()
    fill_seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        # Autovacuum analyzes a table this size on its own; right after a bulk fill it has not
        # yet, and the planner would sort 100,000 snapshots on disk.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    measured = _time_requests(org, owner, client)
    document = json.loads(measured.last.content)["document"]
    if len(document["inventory"]) != DATASETS or not document["access_summary"]["chain"]["ok"]:
        raise RuntimeError("the benchmark's evidence is not the one built")
    return _figures(measured, fill_seconds, connection.vendor)


def _start_like_web() -> None:
    """A migrated database and a process set up as the web process is."""
    import django

    django.setup()
    # What _time_requests uses is loaded here, before the freeze below, so that freeze covers
    # its modules too.
    import rest_framework.test  # noqa: F401
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    import lifecycle.services
    import lifecycle.tasks  # noqa: F401

    call_command("migrate", verbosity=0)
    setup_test_environment()  # the test client's host and e-mail settings, nothing else
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False
    # Start as the web process starts: agencyops.wsgi loads the URL patterns and freezes what
    # start-up allocated (gc.freeze), so full collections scan only what requests allocate.
    import agencyops.wsgi  # noqa: F401


def _time_requests(org: Any, owner: Any, client: Any) -> _Requests:
    """The first request, REQUESTS timed ones, then one whose queries are counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from lifecycle import tasks
    from lifecycle.services import access_events_drain

    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/v1/clients/{client.public_id}/evidence/"
    samples: list[float] = []
    cpu: list[float] = []  # this process's CPU time per request: the box is shared
    # Full garbage collections inside timed requests (ms each): the spikes they cause set p95.
    full_gc: list[float] = []
    gc_clock: dict[str, Any] = {"timing": False}

    def watch_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2 and gc_clock["timing"]:
            if phase == "start":
                gc_clock["started"] = time.perf_counter()
            elif "started" in gc_clock:
                full_gc.append((time.perf_counter() - gc_clock.pop("started")) * 1000)

    gc.callbacks.append(watch_gc)
    # The drain messages go nowhere; the appends happen between requests, off the clock.
    with mock.patch.object(tasks.access_events_drain_task, "delay"):
        started = time.perf_counter()
        first = api.get(url)
        first_ms = (time.perf_counter() - started) * 1000
        if first.status_code != 200:
            raise RuntimeError(f"evidence answered {first.status_code}: {first.content[:500]!r}")
        access_events_drain(org.pk)
        for _ in range(REQUESTS):
            started, started_cpu = time.perf_counter(), time.process_time()
            gc_clock["timing"] = True
            response = api.get(url)
            gc_clock["timing"] = False
            samples.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"evidence answered {response.status_code}")
            access_events_drain(org.pk)
        with CaptureQueriesContext(connection) as queries:
            last = api.get(url)
    gc.callbacks.remove(watch_gc)
    return _Requests(first_ms, samples, cpu, full_gc, len(queries), last)


def _figures(measured: _Requests, fill_seconds: float, database: str) -> dict[str, Any]:
    samples, cpu, full_gc = measured.samples, measured.cpu, measured.full_gc
    ordered, ordered_cpu = sorted(samples), sorted(cpu)
    at_95 = max(0, round(0.95 * len(ordered)) - 1)
    return {
        "database": database,
        "client": "Django test client, in process",
        "datasets": DATASETS,
        "snapshots": SNAPSHOTS,
        "access_events": EVENTS,
        "requests": REQUESTS,
        "fill_seconds": round(fill_seconds, 1),
        "first_request_ms": round(measured.first_ms, 1),
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(ordered[at_95], 1),
        "max_ms": round(ordered[-1], 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "cpu_p95_ms": round(ordered_cpu[at_95], 1),
        "full_gc_in_requests": len(full_gc),
        "full_gc_ms_each": round(statistics.median(full_gc), 1) if full_gc else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "queries_per_request": measured.queries,
        "document_bytes": len(measured.last.content),
        "samples_ms": [round(x, 1) for x in samples],
    }


if __name__ == "__main__":
    from kernel.tenancy import system_scope

    # The child is the operator's process, as manage.py is: the fill and the drains between
    # requests see every organization; each request still opens its own scope, as in service.
    with system_scope():
        print(json.dumps(_measure()))
