"""Backups carried out by real Celery processes: beat's dispatcher, a worker, a crash.

Each test starts `celery worker` (and beat) as subprocesses against the test database and the
broker from settings (Redis when CELERY_BROKER_URL is set, else the filesystem broker), then
watches the database. Worker and beat logs are printed whenever a wait or a check fails.
"""

from __future__ import annotations

import hashlib
import random
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backups import engine
from backups.engine.packs import index_prefix
from backups.models import (
    BackupRun,
    BackupSchedule,
    DefaultFor,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import (
    backup_run_create,
    policy_update,
    repository_base,
    snapshot_verify,
    store_for_location,
)
from backups.tasks import backup_run_task, runs_recover_task
from clients.models import Dataset
from kernel.claims import STALE_AFTER
from kernel.exceptions import Conflict
from tests.backups.conftest import Agency, sample_files
from tests.backups.integration.support import (
    VISIBILITY_TIMEOUT_SECONDS,
    Cluster,
    digest_files,
    throttled_link,
    uses_filesystem_broker,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
# 128 MiB over a 24 MiB/s link: about five seconds of upload in two waves of 64 MiB (the
# engine keeps 4 packs of 16 MiB in flight), so progress is visible long before the end.
BIG_FILES = 16
BIG_FILE_SIZE = 8 * MIB
LINK_BYTES_PER_SECOND = 24 * MIB

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _big_files() -> dict[str, bytes]:
    rng = random.Random(2031)
    return {f"shards/shard-{i:02d}.bin": rng.randbytes(BIG_FILE_SIZE) for i in range(BIG_FILES)}


def _finished_runs(dataset: Dataset, count: int) -> list[BackupRun] | None:
    runs = list(BackupRun.objects.filter(dataset=dataset, status__in=FINISHED))
    return runs if len(runs) == count else None


def _check_snapshot(
    agency: Agency, snapshot: Snapshot, expected: dict[str, str], dest: Path
) -> None:
    """Every chunk is read back and authenticated, and a restore is byte-identical."""
    report = snapshot_verify(snapshot)
    assert report.ok, report
    assert report.chunks_read == report.chunks_referenced > 0
    assert report.files == len(expected)
    agency.restore(snapshot, dest)
    assert digest_files(dest) == expected


def test_beat_dispatches_due_backups_that_a_worker_carries_out(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    files = sample_files()
    dataset = agency.dataset("Nightly export", files=files)
    bucket = agency.s3_location("Offsite bucket")
    disk = agency.local_location("Second medium")
    policy_update(
        actor=agency.actor, policy=agency.policy(DefaultFor.DAILY), targets=[bucket, disk]
    )
    # A new target's first copy is due at once.
    first_due = {
        s.location_id: s.next_due_at for s in BackupSchedule.objects.filter(dataset=dataset)
    }
    assert set(first_due) == {bucket.pk, disk.pk}
    assert max(first_due.values()) <= timezone.now()
    cluster.seed_beat_schedule("backups-dispatch", last_run_ago=timedelta(minutes=2))

    cluster.start_worker("worker")
    beat = cluster.start_beat()

    runs = cluster.wait_for(
        lambda: _finished_runs(dataset, 2), 60, "the two scheduled backups (one per target)"
    )

    logs = cluster.logs()
    assert "Sending due task backups-dispatch" in beat.output(), logs
    for run in runs:
        assert run.status == RunStatus.SUCCEEDED, f"{run.error}\n{logs}"
        assert run.trigger == Trigger.SCHEDULE
    assert BackupRun.objects.filter(dataset=dataset).count() == 2, logs
    snapshots = list(Snapshot.objects.filter(dataset=dataset).select_related("location"))
    assert sorted(s.location_id for s in snapshots) == sorted([bucket.pk, disk.pk]), logs
    expected = {path: _sha256(data) for path, data in files.items()}
    for snapshot in snapshots:
        _check_snapshot(agency, snapshot, expected, tmp_path / f"restored-{snapshot.location.kind}")
    for schedule in BackupSchedule.objects.filter(dataset=dataset):
        assert schedule.last_success_at is not None
        assert schedule.next_due_at > timezone.now()  # tomorrow's slot


def test_a_backup_killed_mid_run_is_resumed_by_another_worker_with_one_snapshot_per_target(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    files = _big_files()
    dataset = agency.dataset("Training set", files=files)
    expected = {path: _sha256(data) for path, data in files.items()}
    del files
    disk = agency.local_location("Second medium")

    with throttled_link(agency.s3_endpoint, bytes_per_second=LINK_BYTES_PER_SECOND) as link:
        bucket = agency.s3_location("Offsite over a slow link", endpoint=link)
        targets = [bucket, disk]
        run = backup_run_create(
            dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False
        )
        first = cluster.start_worker("first-worker")
        cluster.publish(backup_run_task, str(run.public_id))

        cluster.wait_for(
            lambda: (
                BackupRun.objects.filter(pk=run.pk, bytes_done__gt=0).exists()
                or BackupRun.objects.filter(pk=run.pk, status__in=FINISHED).exists()
            ),
            60,
            "the backup to report progress",
        )
        first.kill()

        assert first.popen.returncode == -signal.SIGKILL
        run.refresh_from_db()
        too_fast = (
            f"The backup ended ({run.status}, {run.bytes_done} of {run.bytes_total} bytes) before "
            f"it could be interrupted: give it more data or a slower link.{cluster.logs()}"
        )
        assert run.status == RunStatus.RUNNING, too_fast
        assert 0 < run.bytes_done < run.bytes_total, too_fast
        assert run.attempts == 1
        # Nothing complete anywhere: no Snapshot row, no manifest on either target; but some
        # packs were stored (each counts once its index is), and the next attempt should not
        # upload them again.
        assert not Snapshot.objects.filter(dataset=dataset).exists()
        chunks_before = {}
        for location in targets:
            store, base = store_for_location(location), repository_base(location, dataset)
            assert engine.list_snapshots(store, base) == []
            chunks_before[location.pk] = len(list(store.list(index_prefix(base))))
        assert any(chunks_before.values()), chunks_before
        # The dead worker's run still holds its pairs.
        with pytest.raises(Conflict):
            backup_run_create(
                dataset=dataset, trigger=Trigger.MANUAL, targets=[disk], enqueue=False
            )

        # A run is claimed again once its heartbeat is STALE_AFTER old. The killed worker will
        # never beat again, so rather than sleep that long, age its last beat by that much.
        assert run.heartbeat_at is not None
        BackupRun.objects.filter(pk=run.pk).update(
            heartbeat_at=run.heartbeat_at - STALE_AFTER - timedelta(seconds=1)
        )

        if uses_filesystem_broker():
            # The filesystem transport deletes a message when a worker fetches it: the killed
            # worker's task is gone and nothing can redeliver it. The recovery sweep (beat runs
            # it every minute) finds the stale run and enqueues it again; send it as beat would.
            queued = cluster.queued_tasks()
            assert not [args for _task, args in queued if str(run.public_id) in args], queued
            second = cluster.start_worker("second-worker")
            cluster.publish(runs_recover_task)
        else:
            # Redis keeps the unacknowledged message; once the visibility timeout has passed
            # since its delivery (before the run was claimed), the next worker restores it to
            # the queue at start and runs the task again, with no help from us.
            assert run.started_at is not None
            visible_again = run.started_at + timedelta(seconds=VISIBILITY_TIMEOUT_SECONDS + 0.5)
            time.sleep(max(0.0, (visible_again - timezone.now()).total_seconds()))
            second = cluster.start_worker("second-worker")

        done = cluster.wait_for(
            lambda: BackupRun.objects.filter(pk=run.pk, status__in=FINISHED).first(),
            90,
            "the interrupted backup to finish on the second worker",
        )

        logs = cluster.logs()
        assert done.status == RunStatus.SUCCEEDED, f"{done.error}\n{logs}"
        assert done.attempts == 2, logs
        killed_message = first.received(backup_run_task.name)
        resumed_by = second.received(backup_run_task.name)
        assert len(killed_message) == len(resumed_by) == 1, logs
        if uses_filesystem_broker():
            assert resumed_by != killed_message, logs  # a new message, from the sweep
        else:
            assert resumed_by == killed_message, logs  # the same message, redelivered
        # Resumed, not restarted: chunks stored before the kill were not uploaded again.
        assert done.new_bytes < done.bytes_seen == BIG_FILES * BIG_FILE_SIZE
        snapshots = list(Snapshot.objects.filter(dataset=dataset).select_related("location"))
        assert sorted(s.location_id for s in snapshots) == sorted(t.pk for t in targets), logs
        assert {s.run_id for s in snapshots} == {run.pk}
        assert len({s.manifest_id for s in snapshots}) == 1
        for snapshot in snapshots:
            _check_snapshot(
                agency, snapshot, expected, tmp_path / f"restored-{snapshot.location.kind}"
            )
