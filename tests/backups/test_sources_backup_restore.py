"""Issue 15: git repositories and databases backed up, damaged, and brought back, through the
services and the real servers on loopback (a `git daemon`, a file:// repository in the local
root, the machine's PostgreSQL and MariaDB), with the backups on moto's S3 over HTTP.

Each case: back up, damage the source, restore, compare refs/objects or row counts and content;
a point-in-time restore returns the older state; a drill passes, and one whose snapshot record
no longer matches what the bundle or dump holds fails and alerts; a deletion drops the databases
restores made, removes the mirror cache, and leaves the client's own primary alone (named so).
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    BackupRun,
    CopyKind,
    DataCopy,
    RestoreRun,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import (
    backup_run_create,
    backup_run_execute,
    policy_update,
    restore_request,
    restore_run_execute,
    snapshot_as_of,
)
from backups.services.drills import drill_start
from backups.services.sources import mirror_directory
from backups.sources.databases import DatabaseServer
from backups.sources.postgres import postgres_databases, postgres_row_counts
from clients import services as clients_services
from clients.models import Dataset, Membership, StorageLocation
from kernel.exceptions import ValidationFailed
from kernel.tenancy import actor_for_user
from lifecycle import services as lifecycle_services
from lifecycle.models import DeletionState
from tests.backups.conftest import Agency
from tests.dbservers import (
    MYSQL_SAMPLE_COUNTS,
    MysqlScratch,
    PgScratch,
    mysql_content,
    mysql_scratch,
    mysql_server,
    mysql_sql,
    pg_content,
    pg_execute,
    pg_scratch,
    pg_server,
)
from tests.gitserver import GitDaemon, commit_to, git, git_daemon, make_repo, refs_of

__all__ = ["git_daemon", "mysql_scratch", "mysql_server", "pg_scratch", "pg_server"]


# --- helpers ---


def _targets(agency: Agency, dataset: Dataset) -> StorageLocation:
    """One S3 target (moto over HTTP) for every default policy the dataset may have."""
    target = agency.s3_location(f"Backups {dataset.name}")
    protection = dataset.protection
    assert protection.policy is not None
    policy_update(actor=agency.actor, policy=protection.policy, targets=[target])
    return target


def _back_up(dataset: Dataset, target: StorageLocation) -> BackupRun:
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False
    )
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


def _succeeded(dataset: Dataset, target: StorageLocation) -> Snapshot:
    done = _back_up(dataset, target)
    assert done.status == RunStatus.SUCCEEDED, done.error
    return Snapshot.objects.filter(run=done).select_related("location").get()


def _restore(
    snapshot: Snapshot, location: StorageLocation | None, path: str, **kw: Any
) -> RestoreRun:
    restore = restore_request(
        actor=None,
        snapshot=snapshot,
        destination_location=location,
        destination_path=path,
        enqueue=False,
        **kw,
    )
    done = restore_run_execute(str(restore.public_id))
    assert done is not None
    return done


def _drill(dataset: Dataset) -> RestoreRun:
    started = drill_start(actor=None, dataset=dataset, enqueue=False)
    done = restore_run_execute(str(started.public_id))
    assert done is not None
    return done


def _owner_actor(agency: Agency) -> Any:
    owner = Membership.objects.get(organization=agency.org, role="owner").user
    actor = actor_for_user(owner)
    assert actor is not None
    return actor


# --- git ---


def _git_location(agency: Agency, base_url: str) -> StorageLocation:
    return clients_services.location_create(
        actor=agency.actor,
        name=f"Git {base_url}",
        kind="git",
        provider="git_server",
        endpoint_url=base_url,
        client=agency.client,
    )


def _git_dataset(agency: Agency, location: StorageLocation, path: str) -> Dataset:
    return clients_services.dataset_register(
        actor=agency.actor,
        client=agency.client,
        name=f"Repository {path}",
        kind="code_repository",
        location=location,
        path=path,
    )


def test_a_repository_on_a_git_daemon_is_backed_up_deleted_and_restored_byte_identical(
    agency: Agency, git_daemon: GitDaemon, tmp_path: Path
) -> None:
    source = git_daemon.base_dir / "app.git"
    original = make_repo(source)
    location = _git_location(agency, git_daemon.base_url)
    dataset = _git_dataset(agency, location, "app.git")
    target = _targets(agency, dataset)

    first = _succeeded(dataset, target)
    assert first.source_meta["refs"] == original
    assert first.source_meta["fsck_ok"] is True
    mirror = DataCopy.objects.get(dataset=dataset, kind=CopyKind.MIRROR)
    assert mirror.path.endswith(str(mirror_directory(dataset)))
    # A second commit, then a second snapshot: the point in time to come back from.
    commit_to(source, branch="main", filename="later.txt", content=b"later\n")
    second = _succeeded(dataset, target)
    assert second.source_meta["refs"] != original

    # The repository is deleted on the host (the guide's drill: "after simulating a deletion").
    shutil.rmtree(source)
    # Restored as of the first snapshot into a folder of a local location: a bare repository.
    disk = agency.local_location("Restore disk", client=agency.client)
    as_of = snapshot_as_of(dataset, first.taken_at)
    assert as_of is not None
    assert as_of.pk == first.pk
    done = _restore(as_of, disk, "restored/app.git")
    assert done.status == RunStatus.SUCCEEDED, done.error
    restored = Path(disk.prefix) / "restored" / "app.git"
    assert refs_of(restored) == original
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--mirror", str(restored), str(clone))
    assert refs_of(clone) == original
    git("--git-dir", str(clone), "fsck", "--full")  # raises when git finds a fault
    assert DataCopy.objects.get(restore=done).kind == CopyKind.RESTORE

    # And pushed back, newest state, to an empty repository where the deleted one was.
    git("init", "--quiet", "--bare", str(source))
    pushed = _restore(second, location, "app.git")
    assert pushed.status == RunStatus.SUCCEEDED, pushed.error
    assert refs_of(source) == second.source_meta["refs"]
    assert DataCopy.objects.get(restore=pushed).kind == CopyKind.PUSHED
    # A push never goes over a repository that has refs.
    again = _restore(second, location, "app.git")
    assert again.status == RunStatus.FAILED
    assert "not empty" in again.error


def test_a_file_repository_inside_the_local_root_is_backed_up_and_drilled(
    agency: Agency,
) -> None:
    repos = agency.root / "repos"
    repos.mkdir()
    original = make_repo(repos / "lib.git")
    location = _git_location(agency, f"file://{repos}/")
    dataset = _git_dataset(agency, location, "lib.git")
    target = _targets(agency, dataset)
    snapshot = _succeeded(dataset, target)
    assert snapshot.source_meta["refs"] == original

    drill = _drill(dataset)
    assert drill.status == RunStatus.SUCCEEDED, (drill.error, drill.issues)
    assert drill.rto_met is True

    # The snapshot's record says another commit: the drill's ref comparison fails and alerts.
    Snapshot.objects.filter(pk=snapshot.pk).update(
        source_meta={**snapshot.source_meta, "refs": {**original, "refs/heads/main": "0" * 40}}
    )
    failed = _drill(dataset)
    assert failed.status == RunStatus.FAILED
    assert any("refs/heads/main" in issue for issue in failed.issues), failed.issues
    assert Alert.objects.filter(
        dataset=dataset, kind=AlertKind.DRILL_FAILED, resolved_at__isnull=True
    ).exists()


def test_a_missing_repository_and_an_unreachable_host_fail_clearly_and_leave_no_snapshot(
    agency: Agency, git_daemon: GitDaemon
) -> None:
    location = _git_location(agency, git_daemon.base_url)
    dataset = _git_dataset(agency, location, "missing.git")
    target = _targets(agency, dataset)
    missing = _back_up(dataset, target)
    assert missing.status == RunStatus.FAILED
    assert "not found" in missing.error.lower() or "does not" in missing.error.lower()
    closed = _git_location(agency, "git://127.0.0.1:1/")
    unreachable = _git_dataset(agency, closed, "app.git")
    _targets(agency, unreachable)
    failed = _back_up(unreachable, target)
    assert failed.status == RunStatus.FAILED
    assert not Snapshot.objects.filter(dataset__in=[dataset, unreachable]).exists()


# --- PostgreSQL ---


def _database_location(
    agency: Agency, kind: str, url: str, server: DatabaseServer
) -> StorageLocation:
    credentials = {"username": server.username}
    if server.password:
        credentials["password"] = server.password
    return clients_services.location_create(
        actor=agency.actor,
        name=f"{kind} {url}",
        kind=kind,
        provider="database_server",
        endpoint_url=url,
        client=agency.client,
        credentials=credentials,
    )


def _database_dataset(agency: Agency, location: StorageLocation, name: str) -> Dataset:
    return clients_services.dataset_register(
        actor=agency.actor,
        client=agency.client,
        name=f"Database {name}",
        kind="business_records",
        location=location,
        path=name,
    )


def test_a_postgres_database_is_dumped_damaged_restored_into_a_new_one_and_deleted(
    agency: Agency, pg_scratch: PgScratch
) -> None:
    source = pg_scratch.create()
    before = pg_content(source)
    counts = postgres_row_counts(pg_scratch.server, database=source)
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    dataset = _database_dataset(agency, location, source)
    target = _targets(agency, dataset)
    first = _succeeded(dataset, target)
    assert first.source_meta["tables"] == counts
    assert first.source_meta["server_version"].startswith("15")

    # Damage: rows deleted, then a table dropped; a second snapshot takes the damage in.
    table = sorted(counts)[0]
    schema, _, name = table.partition(".")
    quoted = f'"{schema}"."{name}"'
    pg_execute(source, f"DELETE FROM {quoted}")  # noqa: S608 - a table name the test made
    second = _succeeded(dataset, target)
    assert second.source_meta["tables"][table] == 0
    pg_execute(source, f"DROP TABLE {quoted} CASCADE")

    # Point in time: the newest snapshot at or before the first one's time is the undamaged one.
    as_of = snapshot_as_of(dataset, first.taken_at + timedelta(microseconds=1))
    assert as_of is not None
    assert as_of.pk == first.pk
    new_name = pg_scratch.name()
    done = _restore(as_of, location, new_name)
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.outcome["tables"] == counts
    assert pg_content(new_name) == before
    copy = DataCopy.objects.get(restore=done)
    assert copy.kind == CopyKind.DATABASE

    # The same name again: refused without force (it exists, not empty); force replaces it.
    refused = _restore(first, location, new_name)
    assert refused.status == RunStatus.FAILED
    assert "not empty" in refused.error
    forced = _restore(first, location, new_name, force=True)
    assert forced.status == RunStatus.SUCCEEDED, forced.error

    # A drill: into a scratch database, row counts compared, dropped.
    drill = _drill(dataset)
    assert drill.status == RunStatus.SUCCEEDED, (drill.error, drill.issues)
    scratch = DataCopy.objects.get(restore=drill)
    assert "dropped" in scratch.removal
    assert not [
        n
        for n in postgres_databases(pg_scratch.server)
        if n.startswith("agencyops_drill_") and drill.public_id.hex[:16] in n
    ]

    # Deletion at engagement end: the restored database is dropped, the primary is named kept.
    request = lifecycle_services.deletion_request_create(
        actor=agency.actor, client=agency.client, dataset=dataset, reason="contract ended"
    )
    assert any(e.get("database") == new_name for e in request.plan["locations"])
    assert request.plan["primaries_kept"][0]["database"] == source
    assert "not deleted by AgencyOps" in request.plan["primaries_kept"][0]["note"]
    lifecycle_services.deletion_request_approve(
        actor=_owner_actor(agency), request=request, enqueue=False
    )
    executed = lifecycle_services.deletion_request_execute(str(request.public_id))
    assert executed.state == DeletionState.VERIFIED, (executed.error, executed.verification)
    names = postgres_databases(pg_scratch.server)
    assert new_name not in names
    assert source in names  # the client's own database: not ours to drop
    certificate = executed.certificate.document
    text = str(certificate)
    assert new_name in text
    assert "not deleted by AgencyOps" in text


def test_a_postgres_drill_of_a_snapshot_whose_counts_disagree_fails_and_alerts(
    agency: Agency, pg_scratch: PgScratch
) -> None:
    source = pg_scratch.create()
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    dataset = _database_dataset(agency, location, source)
    snapshot = _succeeded(dataset, _targets(agency, dataset))
    tables = dict(snapshot.source_meta["tables"])
    first = sorted(tables)[0]
    tables[first] += 7
    Snapshot.objects.filter(pk=snapshot.pk).update(
        source_meta={**snapshot.source_meta, "tables": tables}
    )
    # The restored scratch database is compared with the snapshot's record: 7 rows short.
    drill = _drill(dataset)
    assert drill.status == RunStatus.FAILED
    assert any(first in issue for issue in drill.issues), drill.issues
    assert Alert.objects.filter(
        dataset=dataset, kind=AlertKind.DRILL_FAILED, resolved_at__isnull=True
    ).exists()
    assert "dropped" in DataCopy.objects.get(restore=drill).removal


# --- MariaDB ---


def test_a_mariadb_database_is_dumped_damaged_and_restored_with_equal_rows(
    agency: Agency, mysql_scratch: MysqlScratch
) -> None:
    source = mysql_scratch.create()
    before = mysql_content(source)
    location = _database_location(agency, "mysql", "mysql://127.0.0.1:3306", mysql_scratch.server)
    dataset = _database_dataset(agency, location, source)
    target = _targets(agency, dataset)
    first = _succeeded(dataset, target)
    assert first.source_meta["tables"] == MYSQL_SAMPLE_COUNTS

    mysql_sql("DELETE FROM audit; DROP TABLE `Stock Items`;", database=source)
    new_name = mysql_scratch.name()
    done = _restore(first, location, new_name)
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.outcome["tables"] == MYSQL_SAMPLE_COUNTS
    assert mysql_content(new_name) == before

    drill = _drill(dataset)
    assert drill.status == RunStatus.SUCCEEDED, (drill.error, drill.issues)


def test_wrong_database_credentials_fail_the_backup_clearly_and_leave_no_snapshot(
    agency: Agency, mysql_scratch: MysqlScratch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = mysql_scratch.create(sample=False)
    server = mysql_scratch.user(password="right-password-1", databases=[source])
    wrong = DatabaseServer(
        host=server.host, port=server.port, username=server.username, password="wrong-password-2"
    )
    location = _database_location(agency, "mysql", "mysql://127.0.0.1:3306", wrong)
    dataset = _database_dataset(agency, location, source)
    failed = _back_up(dataset, _targets(agency, dataset))
    assert failed.status == RunStatus.FAILED
    assert "wrong-password-2" not in failed.error
    assert "wrong-password-2" not in caplog.text  # nor in any log line, at any level
    assert caplog.records  # the run did log (so the check above looked at something)
    assert "credential" in failed.error.lower() or "denied" in failed.error.lower()
    assert not Snapshot.objects.filter(dataset=dataset).exists()
    assert timezone.now() >= failed.created_at


def test_pages_api_and_evidence_show_repository_and_database_datasets(
    agency: Agency, git_daemon: GitDaemon, pg_scratch: PgScratch
) -> None:
    from django.test import Client as PageClient
    from rest_framework.test import APIClient

    make_repo(git_daemon.base_dir / "site.git")
    repository = _git_dataset(agency, _git_location(agency, git_daemon.base_url), "site.git")
    _succeeded(repository, _targets(agency, repository))
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    database = _database_dataset(agency, location, pg_scratch.create())
    _succeeded(database, _targets(agency, database))

    pages = PageClient()
    pages.force_login(agency.admin)
    api = APIClient()
    api.force_authenticate(agency.admin)
    for dataset in (repository, database):
        page = pages.get(f"/datasets/{dataset.public_id}/")
        assert page.status_code == 200
        assert dataset.name in page.content.decode()
        detail = api.get(f"/api/v1/datasets/{dataset.public_id}/")
        assert detail.status_code == 200, detail.content
        snapshots = api.get("/api/v1/snapshots/", {"dataset": str(dataset.public_id)})
        assert snapshots.status_code == 200
        assert snapshots.json()["results"][0]["source_meta"]["source"] in ("git", "postgres")
    assert pages.get(f"/clients/{agency.client.public_id}/").status_code == 200
    evidence = api.get(f"/api/v1/clients/{agency.client.public_id}/evidence/")
    assert evidence.status_code == 200, evidence.content
    listed = evidence.content.decode()
    assert repository.name in listed
    assert database.name in listed


def test_dropping_the_clients_own_database_needs_its_own_approval_line(
    agency: Agency, pg_scratch: PgScratch
) -> None:
    source = pg_scratch.create()
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    dataset = _database_dataset(agency, location, source)
    _succeeded(dataset, _targets(agency, dataset))
    request = lifecycle_services.deletion_request_create(
        actor=agency.actor,
        client=agency.client,
        dataset=dataset,
        reason="the contract asks for the production database too",
        drop_primary_databases=True,
    )
    assert request.plan["primaries_dropped"][0]["database"] == source
    assert "primaries_kept" not in request.plan
    owner = _owner_actor(agency)
    with pytest.raises(ValidationFailed, match="confirm"):
        lifecycle_services.deletion_request_approve(actor=owner, request=request, enqueue=False)
    lifecycle_services.deletion_request_approve(
        actor=owner, request=request, enqueue=False, confirm_primary_drop=True
    )
    executed = lifecycle_services.deletion_request_execute(str(request.public_id))
    assert executed.state == DeletionState.VERIFIED, (executed.error, executed.verification)
    assert source not in postgres_databases(pg_scratch.server)
    document = executed.certificate.document
    assert document["primaries_dropped"][0]["database"] == source
    assert document["approved_by"][0]["primary_drop_confirmed"] is True
    dropped = [e for e in document["locations"] if source in str(e)]
    assert dropped


def test_a_missing_database_fails_the_backup_clearly(agency: Agency, pg_scratch: PgScratch) -> None:
    location = _database_location(
        agency, "postgres", "postgresql://127.0.0.1:5432", pg_scratch.server
    )
    dataset = _database_dataset(agency, location, pg_scratch.name())  # never created
    failed = _back_up(dataset, _targets(agency, dataset))
    assert failed.status == RunStatus.FAILED
    assert "does not exist" in failed.error or "not found" in failed.error.lower()
    assert not Snapshot.objects.filter(dataset=dataset).exists()


def test_a_drill_of_a_repository_whose_backup_was_damaged_fails_and_alerts(
    agency: Agency,
) -> None:
    repos = agency.root / "repos"
    repos.mkdir()
    make_repo(repos / "tools.git")
    dataset = _git_dataset(agency, _git_location(agency, f"file://{repos}/"), "tools.git")
    target = agency.local_location("Disk target")
    assert dataset.protection.policy is not None
    policy_update(actor=agency.actor, policy=dataset.protection.policy, targets=[target])
    _succeeded(dataset, target)
    # Every pack of the repository on the target, damaged in place (bit rot, a bad disk).
    packs = [p for p in Path(target.prefix).rglob("*") if p.is_file() and "/data/" in str(p)]
    assert packs
    for pack in packs:
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.write_bytes(bytes(data))
    drill = _drill(dataset)
    assert drill.status == RunStatus.FAILED
    assert Alert.objects.filter(
        dataset=dataset, kind=AlertKind.DRILL_FAILED, resolved_at__isnull=True
    ).exists()
