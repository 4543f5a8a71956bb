"""A restore drill carried out end to end by a real Celery worker: started by hand, restored
into scratch, every file verified, the duration recorded, the scratch directory removed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from backups.models import RestoreRun, RunStatus, Snapshot, Trigger
from backups.services import backup_run_create, backup_run_execute
from backups.services.drills import drill_start
from backups.tasks import restore_run_task
from tests.backups.conftest import Agency, sample_files
from tests.backups.integration.support import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _finished(drill: RestoreRun) -> RestoreRun | None:
    return RestoreRun.objects.filter(
        pk=drill.pk, status__in=(RunStatus.SUCCEEDED, RunStatus.FAILED)
    ).first()


def test_a_drill_started_by_hand_is_carried_out_by_a_worker_and_records_its_duration(
    cluster: Cluster, agency: Agency, settings: Any, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    settings.AGENCYOPS_SCRATCH_DIR = scratch
    files = sample_files()
    dataset = agency.dataset("Quarterly drill", files=files)
    bucket = agency.s3_location("Offsite bucket")
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[bucket], enqueue=False
    )
    backed_up = backup_run_execute(str(run.public_id))
    assert backed_up is not None
    assert backed_up.status == RunStatus.SUCCEEDED, backed_up.error
    snapshot = Snapshot.objects.get(dataset=dataset)

    drill = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)
    assert drill.snapshot_id == snapshot.pk
    assert Path(drill.destination_path).parent == scratch
    worker = cluster.start_worker("worker")
    cluster.publish(restore_run_task, str(drill.public_id))

    done = cluster.wait_for(lambda: _finished(drill), 90, "the worker to finish the drill")

    logs = cluster.logs()
    assert worker.received("backups.tasks.restore_run_task"), logs
    assert done.status == RunStatus.SUCCEEDED, f"{done.error} {done.issues}\n{logs}"
    assert done.files == len(files), logs
    assert done.files_verified == len(files), logs
    assert done.bytes == sum(map(len, files.values()))
    assert done.measured_duration is not None
    assert done.measured_duration > timedelta(0)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.measured_duration == done.finished_at - done.started_at
    assert done.rto == dataset.rto
    assert done.rto_met is True
    assert done.rpo_met is True
    assert done.issues == []
    assert done.requested_by_id == agency.admin.pk
    # The worker restored into the scratch directory, then removed it.
    assert not Path(done.destination_path).exists(), logs
    assert not scratch.exists() or list(scratch.iterdir()) == []
