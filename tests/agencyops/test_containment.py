"""Containment, written as the attacks a hostile tenant tried: nothing a tenant sends makes
AgencyOps read or write outside that tenant's own space (issue #12, parts 1, 2, 4 and 5; the
egress policy, the symlink-safe local store, verification, admin, names and the self-backup have
their own test modules).

A tenant here is an organization's owner or admin acting through the API: powerful inside the
organization, and nothing outside it. The operator is whoever sets the environment.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from backups.models import BackupRun, RunStatus, Snapshot
from backups.services import (
    backup_run_execute,
    backup_run_request,
    policy_update,
    restore_request,
    restore_run_execute,
    store_for_location,
)
from backups.storage import AccessDenied, CredentialsError
from clients import services as clients_services
from clients.models import ClientNamespace, Dataset, StorageLocation
from kernel.exceptions import ValidationFailed
from tests.backups.conftest import Agency, agency, new_agency, sample_files, write_files
from tests.conftest import World
from tests.s3server import s3_endpoint

__all__ = ["agency", "new_agency", "s3_endpoint"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]


def _location_body(prefix: str, name: str = "Host disk") -> dict[str, Any]:
    return {"name": name, "kind": "local", "provider": "filesystem", "prefix": prefix}


# --- 1. local storage is the operator's to grant ---


def test_an_owner_cannot_register_the_host_or_agencyops_own_state_as_a_location(
    world: World, as_user: Any, local_root: Path, tmp_path: Path
) -> None:
    """The attack: a location at /, /etc, /root or the server's var/ directory, then a backup
    and a download of /etc/shadow or var/master.key. Every such directory is refused on
    `prefix`, for the owner too, and nothing is created."""
    other_org_folder = local_root / world.other_org.slug / "theirs"
    other_org_folder.mkdir(parents=True)
    own_folder = local_root / world.org.slug
    own_folder.mkdir(parents=True, exist_ok=True)
    (own_folder / "to-etc").symlink_to("/etc")
    hostile = [
        "/",
        "/etc",
        "/root",
        str(settings.VAR_DIR),
        str(Path(settings.VAR_DIR) / "master.key"),
        str(local_root),  # the root itself, outside any organization's folder
        str(other_org_folder),  # another organization's folder
        str(own_folder / "to-etc"),  # a symlink out of the organization's folder
        str(tmp_path),
        "relative/path",
    ]
    owner = as_user(world.owner)
    for prefix in hostile:
        response = owner.post("/api/v1/locations/", _location_body(prefix), format="json")
        assert response.status_code == 400, (prefix, response.content)
        assert "prefix" in response.json()["fields"], prefix
    assert not StorageLocation.objects.filter(name="Host disk").exists()


def test_a_local_location_lives_in_the_organizations_folder_and_is_stored_resolved(
    world: World, as_user: Any, local_root: Path
) -> None:
    folder = local_root / world.org.slug / "disk"
    folder.mkdir(parents=True)
    (local_root / world.org.slug / "alias").symlink_to(folder)
    response = as_user(world.admin).post(
        "/api/v1/locations/",
        _location_body(str(local_root / world.org.slug / "alias")),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["prefix"] == str(folder)  # the real directory, not the alias


def test_a_location_whose_directory_left_the_roots_is_refused_at_use(
    agency: Agency, settings: Any, tmp_path: Path
) -> None:
    """Checked again when a worker opens the store: an operator who narrows the roots (or a
    directory swapped for a symlink) leaves the tenant nothing to read."""
    location = agency.local_location("Moved")
    settings.AGENCYOPS_LOCAL_ROOTS = (tmp_path / "elsewhere",)
    with pytest.raises(AccessDenied, match="local root"):
        store_for_location(location)


def test_locations_may_not_nest(agency: Agency) -> None:
    """A location inside another one would let a dataset of the outer read the inner's data
    (and backup repositories), and a deletion of one reach into the other."""
    outer = agency.local_location("Outer")
    inner_dir = Path(outer.prefix) / "inner"
    inner_dir.mkdir()
    with pytest.raises(ValidationFailed) as refused:
        clients_services.location_create(
            actor=agency.actor,
            name="Inner",
            kind="local",
            provider="filesystem",
            prefix=str(inner_dir),
        )
    assert "prefix" in refused.value.fields


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_roots_that_would_expose_agencyops_state_are_refused_at_start(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    for roots in ("/", str(tmp_path), str(var), f"{tmp_path}/a,{tmp_path}/a/b", "relative"):
        result = _check({"AGENCYOPS_VAR_DIR": str(var), "AGENCYOPS_LOCAL_ROOTS": roots})
        assert result.returncode != 0, roots
        assert "AGENCYOPS_LOCAL_ROOTS" in result.stderr, (roots, result.stderr[-500:])
    fine = _check({"AGENCYOPS_VAR_DIR": str(var), "AGENCYOPS_LOCAL_ROOTS": str(tmp_path / "st")})
    assert fine.returncode == 0, fine.stderr[-2000:]


# --- 2. no ambient credentials ---


def test_an_s3_location_without_credentials_is_refused(
    world: World, as_user: Any, s3_endpoint: str
) -> None:
    """The attack: an S3 location without credentials silently used the server's own."""
    body = {
        "name": "Ambient",
        "kind": "s3",
        "provider": "minio",
        "endpoint_url": s3_endpoint,
        "bucket": "server-bucket",
    }
    for user in (world.owner, world.admin):
        response = as_user(user).post("/api/v1/locations/", body, format="json")
        assert response.status_code == 400, response.content
        assert "credentials" in response.json()["fields"]


def test_ambient_credentials_only_where_the_operator_allows_them_and_only_for_owners(
    world: World, as_user: Any, s3_endpoint: str, settings: Any
) -> None:
    settings.AGENCYOPS_ALLOW_AMBIENT_CREDENTIALS = True
    body = {
        "name": "Ambient",
        "kind": "s3",
        "provider": "minio",
        "endpoint_url": s3_endpoint,
        "bucket": "server-bucket",
    }
    assert as_user(world.admin).post("/api/v1/locations/", body, format="json").status_code == 403
    response = as_user(world.owner).post("/api/v1/locations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["credentials_source"] == "ambient"  # the location says so


def test_a_location_without_credentials_never_falls_back_on_the_servers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with server credentials in the environment, a stored location without its own
    opens no store unless the operator allows ambient credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "server-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "server-secret")
    bare = StorageLocation.objects.create(
        organization=world.org, name="Legacy", kind="s3", provider="aws", bucket="legacy"
    )
    with pytest.raises(CredentialsError, match="no stored credentials"):
        store_for_location(bare)


# --- 4. each client has its own space on a shared location ---


@pytest.fixture
def shared(agency: Agency) -> dict[str, Any]:
    """The demo's shape: one shared disk, client A ("acme") and client B ("northwind") each
    with their folder; a lead granted manage on client A only."""
    from tests.factories import UserFactory

    disk = agency.local_location("Primary disk")
    acme = agency.client
    northwind = clients_services.client_create(actor=agency.actor, name="Northwind")
    clients_services.namespace_assign(actor=agency.actor, location=disk, client=acme, path="acme")
    clients_services.namespace_assign(
        actor=agency.actor, location=disk, client=northwind, path="northwind"
    )
    write_files(Path(disk.prefix) / "northwind" / "contracts", {"msa.txt": b"NORTHWIND MSA"})
    write_files(Path(disk.prefix) / "acme" / "raw", sample_files())
    lead = UserFactory(username="acme-lead")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    clients_services.grant_create(
        actor=agency.actor, grantee=lead, client=acme, permission="manage", reason="lead"
    )
    return {"disk": disk, "acme": acme, "northwind": northwind, "lead": lead}


def test_a_lead_cannot_point_a_dataset_at_another_clients_folder(
    agency: Agency, shared: dict[str, Any], as_user: Any
) -> None:
    """The attack: a lead granted only Acme registered an Acme dataset at `northwind` on the
    shared disk, backed it up and downloaded Northwind's contract; `PATCH path: ""` (the whole
    disk) and the backup repository's own prefix were accepted too."""
    lead = as_user(shared["lead"])
    disk, acme = shared["disk"], shared["acme"]
    base = {
        "client": str(acme.public_id),
        "name": "Acme raw",
        "kind": "raw_client_data",
        "location": str(disk.public_id),
    }
    repository = str(agency.org.public_id)
    for path in (
        "northwind",
        "northwind/contracts",
        "",
        ".",
        "acme/../northwind",
        repository,
        "_agencyops-self",
        "/etc",
        "acme//raw",
    ):
        response = lead.post("/api/v1/datasets/", {**base, "path": path}, format="json")
        assert response.status_code == 400, (path, response.content)
        assert "path" in response.json()["fields"], path
    created = lead.post("/api/v1/datasets/", {**base, "path": "acme/raw"}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/datasets/{created.json()['id']}/"
    for path in ("", "northwind", "acme/.."):
        response = lead.patch(url, {"path": path}, format="json")
        assert response.status_code == 400, (path, response.content)
    assert Dataset.objects.get(public_id=created.json()["id"]).path == "acme/raw"


def test_a_one_dataset_grant_cannot_widen_a_path_over_its_siblings(
    agency: Agency, shared: dict[str, Any], as_user: Any
) -> None:
    """A grant on one dataset shows that dataset and nothing of its siblings: its path cannot
    grow to cover them (the client's whole folder, a sibling's folder)."""
    from tests.factories import UserFactory

    disk, acme = shared["disk"], shared["acme"]
    clients_services.dataset_register(
        actor=agency.actor,
        client=acme,
        name="Sibling",
        kind="raw_client_data",
        location=disk,
        path="acme/raw",
    )
    own = clients_services.dataset_register(
        actor=agency.actor,
        client=acme,
        name="Own",
        kind="raw_client_data",
        location=disk,
        path="acme/own",
    )
    narrow = UserFactory(username="narrow-lead")
    clients_services.membership_add(actor=agency.actor, user=narrow, role="lead")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=narrow,
        client=acme,
        dataset=own,
        permission="manage",
        reason="one dataset",
    )
    client = as_user(narrow)
    for path in ("acme", "acme/raw", "acme/raw/deeper"):
        response = client.patch(f"/api/v1/datasets/{own.public_id}/", {"path": path}, format="json")
        assert response.status_code == 400, (path, response.content)
    assert (
        client.patch(
            f"/api/v1/datasets/{own.public_id}/", {"path": "acme/own-2"}, format="json"
        ).status_code
        == 200
    )


def test_client_folders_never_overlap_and_avoid_the_products_folders(
    agency: Agency, shared: dict[str, Any], as_user: Any
) -> None:
    disk = shared["disk"]
    third = clients_services.client_create(actor=agency.actor, name="Third")
    admin = as_user(agency.admin)
    for path in (
        "acme",
        "acme/sub",
        "northwind/x",
        "",
        str(agency.org.public_id),
        "_logs",
        "_agencyops-self/x",
        "../x",
    ):
        response = admin.post(
            "/api/v1/namespaces/",
            {"location": str(disk.public_id), "client": str(third.public_id), "path": path},
            format="json",
        )
        assert response.status_code == 400, (path, response.content)
    ok = admin.post(
        "/api/v1/namespaces/",
        {"location": str(disk.public_id), "client": str(third.public_id), "path": "acme2"},
        format="json",
    )
    assert ok.status_code == 201, ok.content  # 'acme2' is not inside 'acme'
    lead = as_user(shared["lead"])
    refused = lead.post(
        "/api/v1/namespaces/",
        {"location": str(disk.public_id), "client": str(shared["acme"].public_id), "path": "z"},
        format="json",
    )
    assert refused.status_code == 403


def test_a_whole_location_is_only_a_dedicated_clients_and_never_one_holding_backups(
    agency: Agency,
) -> None:
    dedicated = agency.local_location("Acme only")
    clients_services.location_update(actor=agency.actor, location=dedicated, client=agency.client)
    whole = clients_services.dataset_register(
        actor=agency.actor,
        client=agency.client,
        name="Everything",
        kind="raw_client_data",
        location=dedicated,
        path="",
    )
    assert whole.path == ""
    policy = agency.policy("daily")
    with pytest.raises(ValidationFailed) as refused:
        policy_update(actor=agency.actor, policy=policy, targets=[dedicated])
    assert "targets" in refused.value.fields
    target = agency.local_location("Target")
    policy_update(actor=agency.actor, policy=policy, targets=[target])
    clients_services.location_update(actor=agency.actor, location=target, client=agency.client)
    with pytest.raises(ValidationFailed) as refused:
        clients_services.dataset_register(
            actor=agency.actor,
            client=agency.client,
            name="All of the target",
            kind="raw_client_data",
            location=target,
            path="",
        )
    assert "path" in refused.value.fields


# --- 5. restores stay in the dataset's own client's space ---


@pytest.fixture
def backed_up(agency: Agency, shared: dict[str, Any]) -> dict[str, Any]:
    dataset = clients_services.dataset_register(
        actor=agency.actor,
        client=shared["acme"],
        name="Patients",
        kind="raw_client_data",
        location=shared["disk"],
        path="acme/raw",
    )
    target = agency.local_location("Backup disk")
    policy_update(actor=agency.actor, policy=agency.policy("daily"), targets=[target])
    run = backup_run_request(actor=agency.actor, dataset=dataset, enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    snapshot = Snapshot.objects.get(dataset=dataset)
    return {**shared, "dataset": dataset, "snapshot": snapshot, "target": target}


def test_a_restore_cannot_write_into_another_clients_folder_the_vault_or_the_host(
    agency: Agency, backed_up: dict[str, Any], as_user: Any
) -> None:
    """The attack: a restore with `destination_path: "northwind/contracts"` wrote Acme's
    patient CSV into Northwind's folder; a restore into a location at /root overwrote a file."""
    lead = as_user(backed_up["lead"])
    url = f"/api/v1/snapshots/{backed_up['snapshot'].public_id}/restore/"
    disk, target = backed_up["disk"], backed_up["target"]
    repository = str(agency.org.public_id)
    cases = [
        (disk, "northwind/contracts"),
        (disk, "northwind"),
        (disk, "."),
        (disk, "acme/."),
        (disk, "/root"),
        (disk, "acme/../northwind"),
        (target, repository),  # the backup vault itself: no folder of Acme's there
        (target, f"{repository}/restores"),
    ]
    for location, path in cases:
        response = lead.post(
            url,
            {"destination_location": str(location.public_id), "destination_path": path},
            format="json",
        )
        assert response.status_code == 400, (path, response.content)
    assert not (Path(disk.prefix) / "northwind" / "contracts" / "patients.csv").exists()
    northwind_only = agency.local_location("Northwind only")
    clients_services.location_update(
        actor=agency.actor, location=northwind_only, client=backed_up["northwind"]
    )
    refused = lead.post(
        url,
        {"destination_location": str(northwind_only.public_id), "destination_path": "x"},
        format="json",
    )
    assert refused.status_code == 400  # another client's dedicated location is not visible
    assert not list(Path(northwind_only.prefix).iterdir())


def test_a_restore_into_the_clients_folder_works_and_a_prefix_with_no_file_fails_clearly(
    agency: Agency, backed_up: dict[str, Any], as_user: Any
) -> None:
    lead = as_user(backed_up["lead"])
    url = f"/api/v1/snapshots/{backed_up['snapshot'].public_id}/restore/"
    response = lead.post(url, {}, format="json")  # the default: Acme's folder on its location
    assert response.status_code == 202, response.content
    assert response.json()["destination_path"].startswith("acme/restores/")
    done = restore_run_execute(response.json()["id"])
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    restored = Path(backed_up["disk"].prefix) / done.destination_path
    assert (restored / "README.md").read_bytes() == sample_files()["README.md"]
    empty = lead.post(url, {"path_prefix": "no/such/folder"}, format="json")
    assert empty.status_code == 202
    failed = restore_run_execute(empty.json()["id"])
    assert failed is not None
    assert failed.status == RunStatus.FAILED
    assert "No file of this snapshot lies under 'no/such/folder'" in failed.error


def test_only_the_operator_restores_into_a_directory(
    backed_up: dict[str, Any], agency: Agency, tmp_path: Path
) -> None:
    lead = agency.actor
    with pytest.raises(ValidationFailed) as refused:
        restore_request(
            actor=lead,
            snapshot=backed_up["snapshot"],
            destination_path=str(tmp_path / "x"),
            enqueue=False,
        )
    assert "destination_location" in refused.value.fields
    operator = restore_request(
        actor=None,
        snapshot=backed_up["snapshot"],
        destination_path=str(tmp_path / "x"),
        enqueue=False,
    )
    assert operator.destination_location is None


def test_an_existing_location_dedicated_to_another_client_keeps_its_space(
    agency: Agency, shared: dict[str, Any]
) -> None:
    """A location's client cannot change under datasets or folders living on it."""
    disk = shared["disk"]
    assert ClientNamespace.objects.filter(location=disk).count() == 2
    from kernel.exceptions import Conflict

    with pytest.raises(Conflict):
        clients_services.location_update(
            actor=agency.actor, location=disk, client=shared["northwind"]
        )


def test_the_demo_keeps_its_folders_under_the_default_root_and_backs_up_and_restores(
    db: Any, local_root: Path, settings: Any, tmp_path: Path
) -> None:
    """`make run` from a fresh clone: bootstrap_demo puts its disks in the demo organization's
    folder of the local root, gives Acme and Northwind their folders, and its datasets back up
    and restore."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from kernel.tenancy import actor_for_user

    settings.VAR_DIR = tmp_path  # the demo's logins file, not the developer's
    call_command("bootstrap_demo", stdout=io.StringIO())
    call_command("bootstrap_demo", stdout=io.StringIO())  # idempotent
    disk = StorageLocation.objects.get(name="Primary disk")
    assert Path(disk.prefix) == local_root / "demo" / "primary"
    assert sorted(ClientNamespace.objects.values_list("path", flat=True)) == ["acme", "northwind"]
    owner = get_user_model().objects.get(username="owner")
    assert not owner.is_superuser  # Django admin is the operator's
    lead = actor_for_user(get_user_model().objects.get(username="lead"))
    assert lead is not None
    dataset = Dataset.objects.get(name="EHR export October")
    run = backup_run_request(actor=lead, dataset=dataset, enqueue=False)
    assert backup_run_execute(str(run.public_id)).status == RunStatus.SUCCEEDED  # type: ignore[union-attr]
    restore = restore_request(
        actor=lead,
        snapshot=Snapshot.objects.get(dataset=dataset),
        destination_location=disk,
        destination_path="acme/restores/check",
        enqueue=False,
    )
    done = restore_run_execute(str(restore.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert (Path(disk.prefix) / "acme/restores/check/patients-2026-10.csv").exists()
    assert BackupRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 1


def test_a_location_dedicated_to_another_client_never_receives_this_clients_backups(
    agency: Agency, shared: dict[str, Any]
) -> None:
    """An organization's policy may list a location dedicated to one client (its bucket may
    sit in that client's own account): other clients' datasets get no schedule there, and a
    run to it is refused."""
    from backups.models import BackupSchedule
    from backups.services import backup_run_create

    northwind_only = agency.local_location("Northwind only")
    clients_services.location_update(
        actor=agency.actor, location=northwind_only, client=shared["northwind"]
    )
    shared_target = agency.local_location("Shared target")
    policy_update(
        actor=agency.actor,
        policy=agency.policy("daily"),
        targets=[shared_target, northwind_only],
    )
    acme_data = clients_services.dataset_register(
        actor=agency.actor,
        client=shared["acme"],
        name="Acme data",
        kind="raw_client_data",
        location=shared["disk"],
        path="acme/raw",
    )
    scheduled = set(
        BackupSchedule.objects.filter(dataset=acme_data).values_list("location_id", flat=True)
    )
    assert scheduled == {shared_target.pk}
    with pytest.raises(ValidationFailed) as refused:
        backup_run_create(
            dataset=acme_data, trigger="manual", targets=[northwind_only], enqueue=False
        )
    assert "target" in refused.value.fields
