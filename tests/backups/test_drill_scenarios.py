"""The guide's four restore tests as drill types (issue 15): a single file from a date, a whole
client project as of a week ago, a database at a point in time, a repository after a deletion.
Each is a drill: restored into scratch, verified, timed against the RTO."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from backups.models import DrillScenario, RestoreRun, RunStatus, Snapshot
from backups.services import restore_run_execute
from backups.services.drills import drill_project_start, drill_scenario_start
from backups.services.sources import mirror_directory
from clients.models import Dataset
from kernel.exceptions import Conflict, ValidationFailed
from tests.backups.conftest import Agency, write_files
from tests.backups.test_sources_backup_restore import (
    _database_dataset,
    _database_location,
    _git_dataset,
    _git_location,
    _succeeded,
    _targets,
)
from tests.dbservers import PgScratch, pg_execute, pg_scratch, pg_server
from tests.gitserver import make_repo

__all__ = ["pg_scratch", "pg_server"]


def _run(drill: RestoreRun) -> RestoreRun:
    done = restore_run_execute(str(drill.public_id))
    assert done is not None
    return done


def test_a_single_file_from_a_date_restores_that_file_as_it_was(agency: Agency) -> None:
    dataset = agency.dataset("Docs", files={"contract.txt": b"version one", "other.txt": b"o"})
    target = _targets(agency, dataset)
    first = _succeeded(dataset, target)
    write_files(agency.source_dir(dataset), {"contract.txt": b"version two, later"})
    _succeeded(dataset, target)

    drill = drill_scenario_start(
        actor=agency.actor,
        scenario=DrillScenario.FILE_AT_DATE,
        dataset=dataset,
        as_of=first.taken_at,
        path="contract.txt",
        enqueue=False,
    )
    assert drill.snapshot_id == first.pk
    done = _run(drill)
    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    assert done.files_verified == 1  # the one file, checked against the first snapshot
    assert done.scenario == DrillScenario.FILE_AT_DATE
    assert done.rto_met is True
    with pytest.raises(Conflict, match="no complete snapshot"):
        drill_scenario_start(
            actor=agency.actor,
            scenario=DrillScenario.FILE_AT_DATE,
            dataset=dataset,
            as_of=first.taken_at - timedelta(days=1),
            path="contract.txt",
        )


def test_a_whole_client_project_as_of_a_week_ago_drills_every_dataset_then(
    agency: Agency,
) -> None:
    datasets: list[Dataset] = [
        agency.dataset("Raw", files={"a.csv": b"1,2"}),
        agency.dataset("Labels", files={"b.json": b"{}"}),
    ]
    snapshots = [_succeeded(d, _targets(agency, d)) for d in datasets]
    with pytest.raises(Conflict, match="had a complete snapshot"):
        drill_project_start(actor=agency.actor, client=agency.client, enqueue=False)
    # Eight days ago, as far as the record goes.
    Snapshot.objects.filter(pk__in=[s.pk for s in snapshots]).update(
        taken_at=timezone.now() - timedelta(days=8)
    )
    drills = drill_project_start(actor=agency.actor, client=agency.client, enqueue=False)
    assert {d.dataset_id for d in drills} == {d.pk for d in datasets}
    for drill in drills:
        done = _run(drill)
        assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
        assert done.scenario == DrillScenario.PROJECT_AS_OF
        # A week-old recovery point on purpose: its age is recorded, beyond the daily RPO.
        assert done.recovery_point_age is not None
        assert done.recovery_point_age >= timedelta(days=8)


def test_a_database_at_a_point_in_time_restores_the_older_state(
    agency: Agency, pg_scratch: PgScratch
) -> None:
    source = pg_scratch.create()
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    dataset = _database_dataset(agency, location, source)
    target = _targets(agency, dataset)
    first = _succeeded(dataset, target)
    pg_execute(source, "CREATE TABLE later (id int); INSERT INTO later VALUES (1), (2);")
    second = _succeeded(dataset, target)
    assert "public.later" in second.source_meta["tables"]

    drill = drill_scenario_start(
        actor=agency.actor,
        scenario=DrillScenario.DATABASE_POINT_IN_TIME,
        dataset=dataset,
        as_of=first.taken_at,
        enqueue=False,
    )
    assert drill.snapshot_id == first.pk
    done = _run(drill)
    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    files = agency.dataset("Files", files={"x": b"x"})
    with pytest.raises(ValidationFailed):
        drill_scenario_start(
            actor=agency.actor,
            scenario=DrillScenario.DATABASE_POINT_IN_TIME,
            dataset=files,
            as_of=timezone.now(),
        )


def test_a_repository_after_a_deletion_comes_back_from_the_backup_alone(
    agency: Agency, tmp_path: Any
) -> None:
    repos = agency.root / "repos"
    repos.mkdir()
    make_repo(repos / "app.git")
    location = _git_location(agency, f"file://{repos}/")
    dataset = _git_dataset(agency, location, "app.git")
    _succeeded(dataset, _targets(agency, dataset))
    assert mirror_directory(dataset).is_dir()

    drill = drill_scenario_start(
        actor=agency.actor,
        scenario=DrillScenario.REPOSITORY_AFTER_DELETION,
        dataset=dataset,
        enqueue=False,
    )
    done = _run(drill)
    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    assert not mirror_directory(dataset).exists()  # the mirror was deleted first
    assert done.measured_duration is not None
