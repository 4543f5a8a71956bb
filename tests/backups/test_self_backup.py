"""AgencyOps backs itself up, and `restore_self` rebuilds a working instance in a fresh database.

The restore runs as it would after losing the server: `manage.py` subprocesses whose
DATABASE_URL names a new, empty database (PostgreSQL when the suite runs on it, else a new
SQLite file), with only the master key and the target's address and S3 credentials. They then
prove the rebuilt instance serves the same clients, datasets, snapshots and certificates, signs
with the same key, and restores a client dataset byte for byte from the targets.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from backups.engine import list_snapshots, load_data_key
from backups.engine.errors import KeyUnwrapFailed
from backups.models import Alert, AlertState, Snapshot
from backups.services import backup_run_execute, backup_run_request, policy_update
from backups.services.selfbackup import (
    KEY_CONTEXT,
    SELF_REPOSITORY,
    SelfBackupError,
    self_backup_data_key,
    self_backup_locations,
    self_backup_run,
)
from backups.storage import LocalObjectStore
from backups.tasks import self_backup_task
from clients.models import Client, Dataset, StorageLocation
from lifecycle.models import DeletionCertificate, DeletionRequest
from lifecycle.services import certificate_file_bytes, deletion_certificate_issue
from tests.backups.conftest import Agency, read_files, sample_files
from tests.backups.integration.support import database_url
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICIES = ("continuous", "records", "daily", "weekly", "monthly")

# Run inside `manage.py shell` against the restored database: what it holds and what it serves.
PROBE = """
import json
import logging
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from backups.models import Snapshot
from clients.models import Client, Dataset
from lifecycle.models import DeletionCertificate
from lifecycle.services import certificate_file_bytes

api = APIClient()
api.force_authenticate(get_user_model().objects.get(username="agency-admin"))

def served(url):
    response = api.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return sorted(item["id"] for item in response.json()["results"])

print("PROBE:" + json.dumps({
    "clients": sorted(str(c.public_id) for c in Client.objects.all()),
    "datasets": sorted(str(d.public_id) for d in Dataset.objects.all()),
    "snapshots": sorted(str(s.public_id) for s in Snapshot.objects.all()),
    "certificates": {
        str(c.public_id): certificate_file_bytes(c).decode()
        for c in DeletionCertificate.objects.all()
    },
    "api_clients": served("/api/v1/clients/"),
    "api_datasets": served("/api/v1/datasets/"),
    "api_snapshots": served("/api/v1/snapshots/"),
}))
"""


@dataclass
class FreshDatabase:
    """A new, empty database of the suite's vendor, for a rebuilt instance."""

    url: str
    name: str
    vendor: str

    def tables(self) -> list[str]:
        if self.vendor == "sqlite":
            if not Path(self.name).exists():
                return []
            with sqlite3.connect(self.name) as db:
                return [
                    r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
        import psycopg

        params = connection.settings_dict
        with psycopg.connect(
            dbname=self.name,
            host=params.get("HOST") or None,
            port=params.get("PORT") or None,
            user=params.get("USER") or None,
            password=params.get("PASSWORD") or None,
        ) as db:
            rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return [r[0] for r in rows.fetchall()]


@pytest.fixture
def fresh_database(transactional_db: Any, tmp_path: Path) -> Iterator[FreshDatabase]:
    if connection.vendor == "sqlite":
        path = tmp_path / "rebuilt" / "agencyops.sqlite3"
        path.parent.mkdir()
        yield FreshDatabase(f"sqlite:///{path}", str(path), "sqlite")
        return
    name = f"{connection.settings_dict['NAME']}_restored_{os.getpid()}"[:63]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield FreshDatabase(
            database_url({**connection.settings_dict, "NAME": name}),
            name,
            "postgresql",
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(
    *args: str, database: FreshDatabase, workdir: Path, master_key: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` as a new machine would run it: its own var dir, the given
    database and master key, S3 credentials from the AWS variables, nothing else."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "AGENCYOPS_MASTER_KEY", "AGENCYOPS_MASTER_KEY_FILE"}
    }
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "agencyops.settings",
            "DATABASE_URL": database.url,
            "AGENCYOPS_MASTER_KEY": master_key,
            "AGENCYOPS_VAR_DIR": str(workdir / "var"),
            "AGENCYOPS_ACCESS_LOG_INLINE": "1",
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": TEST_REGION,
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _targets(agency: Agency, *locations: StorageLocation) -> None:
    for default_for in DEFAULT_POLICIES:
        policy_update(actor=agency.actor, policy=agency.policy(default_for), targets=locations)


def _certificate(agency: Agency) -> DeletionCertificate:
    """A verified deletion of an old dataset and its signed certificate (signing key created)."""
    old = agency.dataset("Finished engagement data")
    request = DeletionRequest.objects.create(
        organization=agency.org,
        client=agency.client,
        dataset=old,
        scope="dataset",
        reason="contract ended",
        state="verified",
        verification={"ok": True, "locations": [], "database_keys_destroyed": True},
        plan={"datasets": [], "locations": [], "keys": []},
        verified_at=timezone.now(),
    )
    return deletion_certificate_issue(request)


def _master_key() -> str:
    from django.conf import settings

    return str(settings.AGENCYOPS_MASTER_KEY)


def test_restore_self_rebuilds_a_working_instance_in_a_fresh_database(
    transactional_db: Any, agency: Agency, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    offsite = agency.s3_location("Offsite bucket", prefix="backups")
    disk = agency.local_location("Backup disk")
    _targets(agency, offsite, disk)
    files = sample_files()
    dataset = agency.dataset("Training data", files=files)
    run = backup_run_request(actor=agency.actor, dataset=dataset, enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error
    certificate = _certificate(agency)
    before = {
        "clients": sorted(str(c.public_id) for c in Client.objects.filter(organization=agency.org)),
        "datasets": sorted(str(d.public_id) for d in Dataset.objects.filter(client=agency.client)),
        "snapshots": sorted(str(s) for s in Snapshot.objects.values_list("public_id", flat=True)),
        "certificates": {str(certificate.public_id): certificate_file_bytes(certificate).decode()},
    }
    assert len(before["snapshots"]) == 2
    assert len(before["datasets"]) == 2
    public_key = certificate.public_key

    out = StringIO()
    call_command("backup_self", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["ok"] is True
    assert result["vendor"] == connection.vendor
    assert result["counts"]["snapshots"] == 2
    assert result["counts"]["certificates"] == 1
    by_uri = {t["uri"]: t["snapshot_id"] for t in result["targets"]}
    assert set(by_uri) == {offsite.display_uri, disk.display_uri}
    offsite_snapshot = by_uri[offsite.display_uri]
    s3_args = ["--from", f"s3://{offsite.bucket}/backups", "--endpoint-url", agency.s3_endpoint]
    run_manage = {"database": fresh_database, "workdir": tmp_path, "master_key": _master_key()}

    # A wrong master key cannot open the repository: a clear error, and nothing is written.
    wrong = manage(
        "restore_self",
        *s3_args,
        "--snapshot",
        offsite_snapshot,
        **{**run_manage, "master_key": "A" * 43 + "="},
    )
    assert wrong.returncode != 0
    assert "master key does not open this self-backup" in wrong.stderr
    assert fresh_database.tables() == []

    # A snapshot that does not exist there.
    missing = manage(
        "restore_self",
        *s3_args,
        "--snapshot",
        f"20240101T000000.000000Z-{uuid.uuid4()}",
        **run_manage,
    )
    assert missing.returncode != 0
    assert "No self-backup snapshot" in missing.stderr
    assert fresh_database.tables() == []

    # --list on the other target shows its snapshot and what it holds.
    listed = manage("restore_self", "--from", disk.display_uri, "--list", **run_manage)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if by_uri[disk.display_uri] in row)
    assert f"| {connection.vendor} |" in line
    assert "organizations=1 clients=1 datasets=2 snapshots=2 certificates=1" in line

    # The restore itself, from the offsite bucket.
    restored = manage("restore_self", *s3_args, "--snapshot", offsite_snapshot, **run_manage)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "DIFFERS" not in restored.stdout
    assert "the database matches the self-backup" in restored.stdout
    assert fresh_database.tables()

    # The rebuilt instance holds and serves the same clients, datasets, snapshots, certificates.
    probe = manage("shell", "-c", PROBE, **run_manage)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(next(r for r in probe.stdout.splitlines() if r.startswith("PROBE:"))[6:])
    assert seen["clients"] == before["clients"] == seen["api_clients"]
    assert seen["datasets"] == before["datasets"] == seen["api_datasets"]
    assert seen["snapshots"] == before["snapshots"] == seen["api_snapshots"]
    assert seen["certificates"] == before["certificates"]

    # It restores the client dataset from the offsite target, byte for byte.
    snapshot = Snapshot.objects.get(location=offsite)
    destination = tmp_path / "restored-dataset"
    restore = manage(
        "restore_snapshot",
        str(snapshot.public_id),
        "--to",
        str(destination),
        "--no-progress",
        **run_manage,
    )
    assert restore.returncode == 0, restore.stderr
    assert read_files(destination) == files

    # It signs with the organization's same key: its evidence verifies under the old public key.
    evidence = tmp_path / "evidence.json"
    wrote = manage("evidence", str(agency.client.public_id), "--out", str(evidence), **run_manage)
    assert wrote.returncode == 0, wrote.stderr
    checked = manage("verify_evidence", str(evidence), "--public-key", public_key, **run_manage)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK")

    # Now the database is not empty: a second restore is refused.
    again = manage("restore_self", *s3_args, "--snapshot", "latest", **run_manage)
    assert again.returncode != 0
    assert "is not empty" in again.stderr
    # --force loads over it (the same database, e.g. after a restore interrupted midway).
    forced = manage("restore_self", *s3_args, "--snapshot", "latest", "--force", **run_manage)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "the database matches the self-backup" in forced.stdout


def test_restore_self_refuses_a_backup_from_newer_code(
    transactional_db: Any, agency: Agency, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    disk = agency.local_location("Backup disk")
    _targets(agency, disk)
    future = MigrationRecorder.Migration.objects.create(app="backups", name="9999_from_the_future")
    try:
        result = self_backup_run()
    finally:
        # django_migrations is no model: the test database's flush would not remove the row.
        future.delete()
    assert result.ok
    refused = manage(
        "restore_self",
        "--from",
        disk.display_uri,
        "--snapshot",
        "latest",
        database=fresh_database,
        workdir=tmp_path,
        master_key=_master_key(),
    )
    assert refused.returncode != 0
    assert "older than the one that wrote the backup" in refused.stderr
    assert "backups.9999_from_the_future" in refused.stderr
    assert fresh_database.tables() == []


def test_restore_self_names_an_unreachable_target(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    run_manage = {"database": fresh_database, "workdir": tmp_path, "master_key": _master_key()}
    gone = manage("restore_self", "--from", f"file://{tmp_path}/nowhere", "--list", **run_manage)
    assert gone.returncode != 0
    assert "Cannot reach the target" in gone.stderr
    assert "does not exist" in gone.stderr
    empty = tmp_path / "empty-disk"
    empty.mkdir()
    nothing = manage("restore_self", "--from", f"file://{empty}", "--list", **run_manage)
    assert nothing.returncode != 0
    assert "No AgencyOps self-backup" in nothing.stderr
    assert fresh_database.tables() == []


def test_the_self_repository_opens_with_the_master_key_alone(
    transactional_db: Any, agency: Agency, settings: Any
) -> None:
    disk = agency.local_location("Backup disk")
    _targets(agency, disk)
    result = self_backup_run()
    assert result.ok
    store = LocalObjectStore(disk.prefix)
    key = load_data_key(store, SELF_REPOSITORY, _master_bytes(), context=KEY_CONTEXT)
    assert key == self_backup_data_key(_master_bytes())
    assert [ref.id for ref in list_snapshots(store, SELF_REPOSITORY)] == [
        result.targets[0].snapshot_id
    ]
    # The dump is encrypted: nothing on the target contains a table name in plain text.
    stored = b"".join(p.read_bytes() for p in Path(disk.prefix).rglob("*") if p.is_file())
    assert b"clients_client" not in stored
    with pytest.raises(KeyUnwrapFailed):
        load_data_key(store, SELF_REPOSITORY, b"\x01" * 32, context=KEY_CONTEXT)


def _master_bytes() -> bytes:
    from kernel.crypto import master_key

    return master_key()


def test_self_backup_locations_default_to_records_targets_unless_configured(
    db: Any, agency: Agency, settings: Any
) -> None:
    records_target = agency.local_location("Records disk")
    other = agency.local_location("Other disk")
    policy_update(actor=agency.actor, policy=agency.policy("records"), targets=[records_target])
    assert self_backup_locations() == [records_target]
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [str(other.public_id)]
    assert self_backup_locations() == [other]
    assert self_backup_locations([str(records_target.public_id)]) == [records_target]
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [str(uuid.uuid4())]
    with pytest.raises(SelfBackupError, match="No storage location"):
        self_backup_locations()
    with pytest.raises(SelfBackupError, match="Not a location id"):
        self_backup_locations(["not-a-uuid"])


def test_self_backup_without_any_location_is_an_error(db: Any, agency: Agency) -> None:
    with pytest.raises(SelfBackupError, match="No location to back AgencyOps up to"):
        self_backup_run()
    with pytest.raises(CommandError, match="No location"):
        call_command("backup_self", stdout=StringIO())


def test_a_failing_target_alerts_and_the_next_success_resolves_it(
    transactional_db: Any, agency: Agency
) -> None:
    disk = agency.local_location("Backup disk")
    missing_bucket = agency.s3_location("Offsite bucket", create_bucket=False)
    _targets(agency, disk, missing_bucket)
    key = f"self_backup_failed:{missing_bucket.public_id}"

    first = self_backup_run()
    assert not first.ok
    by_name = {t.location_name: t for t in first.targets}
    assert by_name["Backup disk"].ok  # one failing target never stops the others
    assert not by_name["Offsite bucket"].ok
    assert missing_bucket.bucket in by_name["Offsite bucket"].error
    assert by_name["Offsite bucket"].transient is False
    alert = Alert.objects.get(incident_key=key)
    assert alert.state == AlertState.OPEN
    assert alert.location == missing_bucket
    with pytest.raises(CommandError, match="failed on: Offsite bucket"):
        call_command("backup_self", stdout=StringIO())

    agency.raw_store(missing_bucket.bucket).create_bucket()
    second = self_backup_run()
    assert second.ok
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_task_adds_a_snapshot_per_run_and_prunes_old_ones(
    transactional_db: Any, agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backups import engine
    from backups.services.selfbackup import backup as selfbackup_backup

    # The backup side reads RETENTION where it is defined: patch it there.
    monkeypatch.setattr(selfbackup_backup, "RETENTION", engine.RetentionPolicy(keep_last=2))
    disk = agency.local_location("Backup disk")
    _targets(agency, disk)
    store = LocalObjectStore(disk.prefix)
    ids = []
    for expected in (1, 2, 2):
        outcome = self_backup_task.apply().get()
        assert outcome["ok"] is True
        ids.append(outcome["targets"][0]["snapshot_id"])
        assert len(list_snapshots(store, SELF_REPOSITORY)) == expected
    assert [ref.id for ref in list_snapshots(store, SELF_REPOSITORY)] == ids[1:]


def test_a_failed_dump_fails_every_location_with_its_cause(
    transactional_db: Any, agency: Agency, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = agency.local_location("Backup disk")
    _targets(agency, disk)
    if connection.vendor == "postgresql":
        monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump there
        cause = "pg_dump is not installed"
    else:
        # The database file cannot be opened (its directory is gone).
        monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "gone" / "db"))
        cause = "unable to open database file"
    result = self_backup_run()
    assert not result.ok
    assert cause in result.targets[0].error
    assert result.targets[0].error.startswith("the database dump failed")
    assert Alert.objects.get(incident_key=f"self_backup_failed:{disk.public_id}").state == "open"
    assert not (Path(disk.prefix) / SELF_REPOSITORY).exists()


# --- several organizations: the self-backup is the operator's, never a tenant's to hold ---


def _self_objects(agency: Agency, location: StorageLocation) -> list[str]:
    """Every self-repository object (any version) on a tenant's target, as the tenant sees it:
    its whole bucket or directory, not just where AgencyOps would put it."""
    if location.kind == "s3":
        versions = agency.raw_store(location.bucket).list_versions("")
        return [v.key for v in versions if f"{SELF_REPOSITORY}/" in f"/{v.key}"]
    root = Path(location.prefix)
    return [
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and SELF_REPOSITORY in path.relative_to(root).parts
    ]


def _two_tenants(
    agency: Agency, new_agency: Any
) -> tuple[Agency, list[tuple[Agency, StorageLocation]]]:
    """A second organization; each has a bucket and a directory as its records targets."""
    rival = new_agency("rival")
    targets = []
    for tenant in (agency, rival):
        bucket = tenant.s3_location("Own bucket")
        disk = tenant.local_location("Own disk")
        _targets(tenant, bucket, disk)
        targets += [(tenant, bucket), (tenant, disk)]
    return rival, targets


def test_with_several_organizations_no_tenant_target_receives_the_self_backup(
    transactional_db: Any,
    agency: Agency,
    new_agency: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = []
    rival, targets = _two_tenants(agency, new_agency)
    caplog.set_level(logging.ERROR, logger="backups.services.selfbackup")

    # The command, the service and the nightly task all refuse, naming the variable.
    with pytest.raises(CommandError, match="set AGENCYOPS_SELF_BACKUP_LOCATIONS"):
        call_command("backup_self", stdout=StringIO())
    with pytest.raises(SelfBackupError, match="Nothing was written"):
        self_backup_run()
    nightly = self_backup_task.apply()
    assert nightly.failed()
    assert isinstance(nightly.result, SelfBackupError)
    assert "AGENCYOPS_SELF_BACKUP_LOCATIONS" in nightly.result.message
    assert "self-backup not run" in caplog.text
    assert "AGENCYOPS_SELF_BACKUP_LOCATIONS" in caplog.text

    # Neither tenant's bucket nor directory holds any of it, and no tenant got an alert about
    # the operator's configuration.
    for tenant, location in targets:
        assert _self_objects(tenant, location) == [], location.name
    assert not Alert.objects.filter(incident_key__startswith="self_backup").exists()

    # The operator may still name a location explicitly (their choice, not a default): then it
    # is written, which also shows the listing above finds a self repository where there is one.
    rival_disk = next(loc for tenant, loc in targets if tenant is rival and loc.kind == "local")
    call_command("backup_self", "--location", str(rival_disk.public_id), stdout=StringIO())
    assert _self_objects(rival, rival_disk)
    assert all(_self_objects(t, loc) == [] for t, loc in targets if loc != rival_disk)


def test_the_operator_directory_receives_the_self_backup_and_restore_self_rebuilds_from_it(
    transactional_db: Any,
    agency: Agency,
    new_agency: Any,
    settings: Any,
    fresh_database: FreshDatabase,
    tmp_path: Path,
) -> None:
    rival, targets = _two_tenants(agency, new_agency)
    operator_dir = tmp_path / "operator" / "agencyops-self-backups"
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [operator_dir.as_uri()]

    out = StringIO()
    call_command("backup_self", "--json", stdout=out)
    first = json.loads(out.getvalue())
    assert first["ok"] is True
    assert first["counts"]["organizations"] == 2
    assert [(t["uri"], t["location_public_id"]) for t in first["targets"]] == [
        (operator_dir.as_uri(), None)
    ]
    assert (operator_dir / SELF_REPOSITORY / "key").is_file()
    assert operator_dir.stat().st_mode & 0o777 == 0o700
    # The same directory as a plain path, through the nightly task: a second snapshot there.
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [str(operator_dir)]
    second = self_backup_task.apply().get()
    assert second["ok"] is True
    assert second["targets"][0]["uri"] == operator_dir.as_uri()
    store = LocalObjectStore(operator_dir)
    assert [ref.id for ref in list_snapshots(store, SELF_REPOSITORY)] == [
        first["targets"][0]["snapshot_id"],
        second["targets"][0]["snapshot_id"],
    ]
    for tenant, location in targets:
        assert _self_objects(tenant, location) == [], location.name

    # A new machine rebuilds from the operator's directory alone (with the master key).
    run_manage = {"database": fresh_database, "workdir": tmp_path, "master_key": _master_key()}
    source = ["--from", operator_dir.as_uri()]
    listed = manage("restore_self", *source, "--list", **run_manage)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("organizations=2 ") == 2
    restored = manage("restore_self", *source, "--snapshot", "latest", **run_manage)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "DIFFERS" not in restored.stdout
    assert "the database matches the self-backup" in restored.stdout
    probe = manage(
        "shell",
        "-c",
        "from clients.models import Organization; "
        "print('ORGS:' + ','.join(sorted(o.slug for o in Organization.objects.all())))",
        **run_manage,
    )
    assert probe.returncode == 0, probe.stderr
    assert f"ORGS:{agency.org.slug},{rival.org.slug}" in probe.stdout.splitlines()


def test_a_self_backup_directory_in_or_around_tenant_space_is_refused(
    transactional_db: Any,
    agency: Agency,
    new_agency: Any,
    settings: Any,
    local_root: Path,
    tmp_path: Path,
) -> None:
    rival, targets = _two_tenants(agency, new_agency)
    inside = rival.root / "self-backups"  # a tenant's own folder of the local root
    through_link = tmp_path / "looks-like-the-operators"
    through_link.symlink_to(agency.root, target_is_directory=True)
    for entry, reason in [
        (inside.as_uri(), "inside the local root"),
        (str(inside), "inside the local root"),
        (str(local_root), "inside the local root"),
        (str(through_link / "self"), "inside the local root"),
        (str(local_root.parent), "contains the local root"),
        ("/", "contains the local root"),
        ("relative/dir", "Not a location id"),
        (f"file://other-host{tmp_path}", "file:///absolute/dir"),
    ]:
        settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [entry]
        with pytest.raises(SelfBackupError, match=reason):
            self_backup_locations()
        with pytest.raises(CommandError, match=reason):
            call_command("backup_self", stdout=StringIO())
        # --location is checked the same way.
        settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = []
        with pytest.raises(CommandError, match=reason):
            call_command("backup_self", "--location", entry, stdout=StringIO())
    assert not inside.exists()
    for tenant, location in targets:
        assert _self_objects(tenant, location) == [], location.name

    # A directory that was the operator's when chosen, but a root since: checked again on use.
    later_root = tmp_path / "later-root"
    chosen = self_backup_locations([str(later_root / "self")])
    settings.AGENCYOPS_LOCAL_ROOTS = (local_root, later_root)
    result = self_backup_run(locations=chosen)
    assert not result.ok
    assert "inside the local root" in result.targets[0].error
    assert not later_root.exists()


def test_start_up_warns_when_several_organizations_have_no_self_backup_location(
    db: Any,
    agency: Agency,
    new_agency: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_assert_num_queries: Any,
    tmp_path: Path,
) -> None:
    from celery.signals import worker_ready

    from agencyops.celery import self_backup_warn_on_worker_ready

    caplog.set_level(logging.INFO, logger="backups.services.selfbackup")
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = []

    def warnings() -> list[str]:
        found = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        caplog.clear()
        return found

    # One organization: the old default applies, nothing to say (one query to know it).
    with django_assert_num_queries(1):
        self_backup_warn_on_worker_ready(sender=None)
    assert warnings() == []

    new_agency("rival")
    with django_assert_num_queries(1):
        self_backup_warn_on_worker_ready(sender=None)
    [warning] = warnings()
    assert "AGENCYOPS_SELF_BACKUP_LOCATIONS" in warning
    assert "writes nowhere" in warning
    # The handler is connected: a worker's ready signal reaches it.
    worker_ready.send(sender=None)
    assert len(warnings()) == 1

    # Set to an operator directory: nothing to say, and no query at all.
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [str(tmp_path / "operator")]
    with django_assert_num_queries(0):
        self_backup_warn_on_worker_ready(sender=None)
    assert warnings() == []
    # Set to a directory in tenant space: that is said at start too.
    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = [str(agency.root / "self")]
    self_backup_warn_on_worker_ready(sender=None)
    [refused] = warnings()
    assert "inside the local root" in refused


def test_a_database_that_cannot_answer_never_stops_the_start(
    db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import OperationalError

    from agencyops.celery import self_backup_warn_on_worker_ready
    from backups.services.selfbackup import common

    def no_database(limit: int) -> list[int]:
        raise OperationalError("no such table: clients_organization")

    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = []
    monkeypatch.setattr(common, "_organization_ids", no_database)
    caplog.set_level(logging.INFO, logger="backups.services.selfbackup")
    self_backup_warn_on_worker_ready(sender=None)
    assert "not checked" in caplog.text
    assert "no such table" in caplog.text


class _ExitedProcess:
    """Stands in for serve_all's children: each has exited at once, so serve_all stops."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


def test_serve_all_warns_at_start_when_several_organizations_have_no_self_backup_location(
    db: Any,
    agency: Agency,
    new_agency: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from agencyops.management.commands import serve_all

    settings.AGENCYOPS_SELF_BACKUP_LOCATIONS = []
    new_agency("rival")
    warned_before_start: list[bool] = []

    def popen(argv: list[str]) -> _ExitedProcess:
        warned_before_start.append("AGENCYOPS_SELF_BACKUP_LOCATIONS" in caplog.text)
        return _ExitedProcess(argv)

    # Neither real servers nor this test process's signal handlers: serve_all's own start only.
    monkeypatch.setattr(serve_all.subprocess, "Popen", popen)
    monkeypatch.setattr(serve_all.signal, "signal", lambda signum, handler: None)
    caplog.set_level(logging.WARNING, logger="backups.services.selfbackup")
    with pytest.raises(SystemExit):
        call_command("serve_all", stdout=StringIO(), stderr=StringIO())
    assert warned_before_start == [True, True, True]
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "AGENCYOPS_SELF_BACKUP_LOCATIONS" in record.getMessage()
