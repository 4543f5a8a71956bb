"""Broker and database faults under a real worker: PostgreSQL drops the worker's connections
mid-backup; Redis drops them mid-run. Either the run finishes after reconnection, or it fails
cleanly (an error recorded, or a heartbeat gone stale) and the recovery path runs it again —
never a dead or hung worker, never a second snapshot, never a half-recorded one.

The database fault needs PostgreSQL (DATABASE_URL), the broker fault Redis
(CELERY_BROKER_URL); elsewhere they are skipped with the reason. CI runs both. Figures go to
var/reliability/broker_db_faults.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from backups import engine
from backups.models import BackupRun, RunStatus, Snapshot, Trigger
from backups.services import (
    backup_run_create,
    dataset_data_key,
    repository_base,
    store_for_location,
)
from backups.tasks import backup_run_task, runs_recover_task
from clients.models import Dataset, StorageLocation
from kernel.claims import STALE_AFTER
from tests.backups.conftest import Agency
from tests.backups.integration.support import Cluster, database_url, digest_files
from tests.reliability.crash_support import send, slow_link, succeeded
from tests.reliability.test_s3_faults import RESULTS, _record

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
ON_REDIS = str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://"))
MIB = 1024 * 1024
# About 10 MiB of new data over a 3 MiB/s link: three seconds of upload to interrupt.
LINK_BYTES_PER_SECOND = 3 * MIB
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)
WORKER_APPLICATION_NAME = "agencyops-fault-worker"


def _files(label: str) -> dict[str, bytes]:
    rng = random.Random(f"broker-db-{label}")
    return {f"part-{i}.bin": rng.randbytes((i + 1) * 512 * 1024) for i in range(6)}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(pk: int) -> BackupRun:
    return BackupRun.objects.get(pk=pk)


def _assert_one_verified_snapshot_per_target(
    agency: Agency,
    run: BackupRun,
    dataset: Dataset,
    targets: list[StorageLocation],
    expected: dict[str, str],
    tmp_path: Path,
) -> None:
    """Exactly one snapshot per target, every chunk verifies, restores byte-identical."""
    snapshots = list(Snapshot.objects.filter(run=run))
    assert sorted(s.location_id for s in snapshots) == sorted(t.pk for t in targets)
    assert len({s.manifest_id for s in snapshots}) == 1
    assert Snapshot.objects.filter(dataset=dataset).count() == len(targets)
    for snapshot in snapshots:
        location = snapshot.location
        report = engine.verify(
            store_for_location(location),
            repository_base(location, dataset),
            dataset_data_key(dataset),
            snapshot.manifest_id,
            read_data_subset=1.0,
        )
        assert report.ok, (location.name, report.missing, report.corrupt)
        assert report.chunks_read == report.chunks_referenced
        restored = agency.restore(snapshot, tmp_path / f"restored-{snapshot.pk}")
        assert {path: _sha256(data) for path, data in restored.items()} == expected


# --- PostgreSQL drops the worker's connections mid-task ---


def _terminate_worker_connections() -> int:
    """End every backend of the worker (found by its application_name) in this database; the
    test's own connection is never among them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s "
            "AND pid <> pg_backend_pid()",
            [WORKER_APPLICATION_NAME],
        )
        return sum(1 for (ended,) in cursor.fetchall() if ended)


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
def test_backup_survives_the_database_dropping_the_workers_connections(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    began = time.monotonic()
    dataset = agency.dataset("DB fault", files=_files("db"))
    expected = digest_files(agency.source_dir(dataset))
    disk = agency.local_location("DB fault disk")
    url = database_url(connection.settings_dict)
    joiner = "&" if "?" in url else "?"
    cluster.env["DATABASE_URL"] = f"{url}{joiner}application_name={WORKER_APPLICATION_NAME}"
    with slow_link(agency.s3_endpoint, upload_bytes_per_second=LINK_BYTES_PER_SECOND) as link:
        bucket = agency.s3_location("DB fault bucket over a slow link", endpoint=link)
        targets = [bucket, disk]
        worker = cluster.start_worker("db-fault-worker")
        run = backup_run_create(
            dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False
        )
        task_id = send(cluster, backup_run_task, str(run.public_id))
        cluster.wait_for(
            lambda: _run(run.pk).status != RunStatus.PENDING, 60, "the backup to be claimed"
        )
        # Let a heartbeat or two pass, so the worker holds an open connection mid-upload.
        time.sleep(1.2)
        at_drop = _run(run.pk)
        assert at_drop.status == RunStatus.RUNNING, "the backup finished before the fault"
        terminated = _terminate_worker_connections()
        assert terminated >= 1, "the worker held no database connection to drop"
        dropped_at = time.monotonic()

        # Either it finishes after reconnecting, or its task ends (failed) and leaves the run
        # running with a heartbeat that goes stale. A worker that died or hung fails here.
        def settled() -> bool:
            if _run(run.pk).status in FINISHED:
                return True
            return task_id in succeeded(worker, backup_run_task.name) or (
                f"backup_run_task[{task_id}] raised" in worker.output()
            )

        cluster.wait_for(settled, 45, "the backup to finish or its task to end")
        assert worker.running, cluster.logs()
        after_drop = _run(run.pk)
        outcome = "finished after reconnection"
        if after_drop.status != RunStatus.SUCCEEDED:
            # Failed cleanly: recorded as still running (its heartbeat will go stale) or failed
            # with a message; the recovery path must run it again.
            assert after_drop.status == RunStatus.RUNNING, after_drop.error
            outcome = "task failed; recovered by runs_recover"
            beat = after_drop.heartbeat_at
            assert beat is not None
            BackupRun.objects.filter(pk=run.pk).update(
                heartbeat_at=beat - STALE_AFTER - STALE_AFTER
            )
            send(cluster, runs_recover_task)
        done = cluster.wait_for(
            lambda: BackupRun.objects.filter(pk=run.pk, status__in=FINISHED).first(),
            45,
            "the backup to finish after the fault",
        )
        finished_after = time.monotonic() - dropped_at
        assert worker.running, cluster.logs()
        assert done.status == RunStatus.SUCCEEDED, f"{done.error}\n{cluster.logs()}"
        _assert_one_verified_snapshot_per_target(agency, done, dataset, targets, expected, tmp_path)
        # The same worker, on fresh connections, still takes work.
        send(cluster, runs_recover_task)
        cluster.wait_for(
            lambda: succeeded(worker, runs_recover_task.name), 30, "a task sent after the fault"
        )
    _record_fault(
        "postgres_connections_dropped",
        {
            "outcome": outcome,
            "backends_terminated": terminated,
            "bytes_done_at_drop": at_drop.bytes_done,
            "bytes_total": done.bytes_total,
            "attempts": done.attempts,
            "seconds_from_drop_to_success": round(finished_after, 2),
            "total_seconds": round(time.monotonic() - began, 1),
        },
    )


# --- Redis drops the worker's connections mid-run ---


def _broker_client_ids() -> set[int]:
    """Ids of the clients connected to the broker's database number."""
    client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    try:
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        return {int(e["id"]) for e in client.client_list() if int(e["db"]) == db}
    finally:
        client.close()


def _drop_redis_connections(ids: set[int]) -> int:
    """CLIENT KILL these connections (the worker's); the shared redis-server keeps running."""
    client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    try:
        return sum(int(client.client_kill_filter(_id=i)) for i in sorted(ids))
    finally:
        client.close()


def _unacked_messages() -> int:
    client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    try:
        return int(client.hlen("unacked"))
    finally:
        client.close()


@pytest.mark.skipif(not ON_REDIS, reason="needs Redis: set CELERY_BROKER_URL=redis://…")
def test_backup_survives_redis_dropping_the_workers_connections(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    began = time.monotonic()
    dataset = agency.dataset("Broker fault", files=_files("redis"))
    expected = digest_files(agency.source_dir(dataset))
    disk = agency.local_location("Broker fault disk")
    with slow_link(agency.s3_endpoint, upload_bytes_per_second=LINK_BYTES_PER_SECOND) as link:
        bucket = agency.s3_location("Broker fault bucket over a slow link", endpoint=link)
        targets = [bucket, disk]
        before = _broker_client_ids()
        worker = cluster.start_worker("redis-fault-worker")
        # The worker's connections: those that appeared while it started (none of this test's).
        worker_ids = _broker_client_ids() - before
        assert worker_ids, "the worker opened no Redis connection"
        run = backup_run_create(
            dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False
        )
        task_id = send(cluster, backup_run_task, str(run.public_id))
        cluster.wait_for(
            lambda: _run(run.pk).status != RunStatus.PENDING, 60, "the backup to be claimed"
        )
        time.sleep(1.0)
        at_drop = _run(run.pk)
        assert at_drop.status == RunStatus.RUNNING, "the backup finished before the fault"
        killed = _drop_redis_connections(worker_ids & _broker_client_ids())
        assert killed >= 1, "the worker held no Redis connection to drop"
        dropped_at = time.monotonic()

        done = cluster.wait_for(
            lambda: BackupRun.objects.filter(pk=run.pk, status__in=FINISHED).first(),
            45,
            "the backup to finish after the broker fault",
        )
        finished_after = time.monotonic() - dropped_at
        assert done.status == RunStatus.SUCCEEDED, f"{done.error}\n{cluster.logs()}"
        # A task published after the drop is consumed: the worker reconnected.
        recover_id = send(cluster, runs_recover_task)
        cluster.wait_for(
            lambda: recover_id in succeeded(worker, runs_recover_task.name),
            30,
            "a task sent after the broker fault",
        )
        consumed_after = time.monotonic() - dropped_at
        assert worker.running, cluster.logs()
        # If Redis handed the backup's message out again, the redelivery found it finished.
        deliveries = worker.received(backup_run_task.name).count(task_id)
        _assert_one_verified_snapshot_per_target(
            agency, _run(run.pk), dataset, targets, expected, tmp_path
        )
        assert _run(run.pk).attempts == 1
    _record_fault(
        "redis_connections_dropped",
        {
            "outcome": "finished; worker reconnected",
            "connections_killed": killed,
            "bytes_done_at_drop": at_drop.bytes_done,
            "bytes_total": done.bytes_total,
            "deliveries_of_the_backup_task": deliveries,
            "unacknowledged_messages_left": _unacked_messages(),
            "seconds_from_drop_to_success": round(finished_after, 2),
            "seconds_from_drop_to_next_task_consumed": round(consumed_after, 2),
            "total_seconds": round(time.monotonic() - began, 1),
        },
    )


def _record_fault(name: str, figures: dict[str, Any]) -> None:
    """Merge one fault's figures into var/reliability/broker_db_faults.json."""
    faults: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        faults = dict(json.loads((RESULTS / "broker_db_faults.json").read_text())["faults"])
    faults[name] = figures
    _record(
        "broker_db_faults",
        {
            "broker": str(settings.CELERY_BROKER_URL).split(":", 1)[0],
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "faults": faults,
        },
    )
