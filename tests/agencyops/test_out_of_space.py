"""The route matrix's containment cases: every route that takes a location, a path or a URL,
given a value outside the caller's space, answers 400 or 404 (403 where the role may not write
at all) for every role, and changes nothing.

Writers (owners, admins; leads and members where their grant lets them write) get 400 with a
message on the named field; another organization gets 404 or, for a reference to an object of
organization A in a body, 400 "not visible"; nobody gets a 2xx.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from backups.models import DataCopy, RestoreRun, Snapshot
from clients.models import ClientNamespace, Dataset, StorageLocation
from tests.conftest import World

ROLES = ("owner", "admin", "lead", "member", "auditor", "ungranted_lead", "other_admin")


@dataclass(frozen=True)
class Case:
    method: str
    url: Callable[[World], str]
    body: Callable[[World], dict[str, Any]]
    field: str
    # roles whose answer must be exactly 400 on `field` (they may write here)
    writers: tuple[str, ...] = ("owner", "admin")


def _id(obj: Any) -> str:
    return str(obj.public_id)


def _local(w: World, prefix: str) -> dict[str, Any]:
    return {"name": "Hostile", "kind": "local", "provider": "filesystem", "prefix": prefix}


def _dataset(w: World, path: str) -> dict[str, Any]:
    return {
        "client": _id(w.client),
        "name": "Hostile",
        "kind": "raw_client_data",
        "location": _id(w.location),
        "path": path,
    }


def _restore(location: Callable[[World], Any], path: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"destination_location": _id(location(w)), "destination_path": path}


CASES: dict[str, Case] = {
    "location at /etc": Case(
        "POST", lambda w: "/api/v1/locations/", lambda w: _local(w, "/etc"), "prefix"
    ),
    "location at the var dir": Case(
        "POST",
        lambda w: "/api/v1/locations/",
        lambda w: _local(w, str(settings.VAR_DIR)),
        "prefix",
    ),
    "location in another organization's folder": Case(
        "POST",
        lambda w: "/api/v1/locations/",
        # a third organization's: neither org A's nor org B's
        lambda w: _local(w, str(w.local_root / "org-c" / "x")),
        "prefix",
    ),
    "location moved to /root": Case(
        "PATCH",
        lambda w: f"/api/v1/locations/{_id(w.local_location)}/",
        lambda w: {"prefix": "/root"},
        "prefix",
    ),
    "dataset in client B's folder": Case(
        "POST",
        lambda w: "/api/v1/datasets/",
        lambda w: _dataset(w, "client-b/contracts"),
        "path",
        writers=("owner", "admin", "lead"),
    ),
    "dataset over the whole shared location": Case(
        "POST",
        lambda w: "/api/v1/datasets/",
        lambda w: _dataset(w, ""),
        "path",
        writers=("owner", "admin", "lead"),
    ),
    "dataset in the backup repositories": Case(
        "POST",
        lambda w: "/api/v1/datasets/",
        lambda w: _dataset(w, str(w.org.public_id)),
        "path",
        writers=("owner", "admin", "lead"),
    ),
    "dataset widened to client B's folder": Case(
        "PATCH",
        lambda w: f"/api/v1/datasets/{_id(w.dataset)}/",
        lambda w: {"path": "client-b"},
        "path",
        writers=("owner", "admin", "lead"),
    ),
    "folder over client B's": Case(
        "POST",
        lambda w: "/api/v1/namespaces/",
        lambda w: {"location": _id(w.location), "client": _id(w.client_c), "path": "client-b/x"},
        "path",
    ),
    "restore into client B's folder": Case(
        "POST",
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_a)}/restore/",
        _restore(lambda w: w.location, "client-b/contracts"),
        "destination_path",
        writers=("owner", "admin", "lead", "member"),
    ),
    "restore into the host": Case(
        "POST",
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_a)}/restore/",
        _restore(lambda w: w.location, "/root"),
        "destination_path",
        writers=("owner", "admin", "lead", "member"),
    ),
    "restore as a no-op path": Case(
        "POST",
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_a)}/restore/",
        _restore(lambda w: w.location, "datasets/./x"),
        "destination_path",
        writers=("owner", "admin", "lead", "member"),
    ),
    "restore into client B's dedicated bucket": Case(
        "POST",
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_a)}/restore/",
        _restore(lambda w: w.dedicated_location, "restores/x"),
        "destination_location",
        writers=("owner", "admin", "lead", "member"),
    ),
    "storage endpoint at a private address": Case(
        "POST",
        lambda w: "/api/v1/locations/",
        lambda w: {
            "name": "Hostile",
            "kind": "s3",
            "provider": "minio",
            "endpoint_url": "http://10.0.0.5:9000",
            "bucket": "b",
            "credentials": {"access_key_id": "k", "secret_access_key": "s"},
        },
        "endpoint_url",
    ),
    "storage endpoint at the metadata address": Case(
        "PATCH",
        lambda w: f"/api/v1/locations/{_id(w.location)}/",
        lambda w: {"endpoint_url": "http://169.254.169.254/latest/meta-data/"},
        "endpoint_url",
    ),
    "webhook to the metadata address": Case(
        "PUT",
        lambda w: "/api/v1/notification-settings/",
        lambda w: {
            "email_enabled": True,
            "webhook_url": "http://169.254.169.254/latest/meta-data/",
        },
        "webhook_url",
        # another organization's admin writes their own settings: refused just the same
        writers=("owner", "admin", "other_admin"),
    ),
    "webhook to loopback": Case(
        "PUT",
        lambda w: "/api/v1/notification-settings/",
        lambda w: {"email_enabled": True, "webhook_url": "http://[::1]:8080/hook"},
        "webhook_url",
        writers=("owner", "admin", "other_admin"),
    ),
    "access logs into client B's folder": Case(
        "POST",
        lambda w: "/api/v1/posture-fixes/",
        lambda w: {
            "location": _id(w.location),
            "action": "enable_logging",
            "log_prefix": "client-b",
        },
        "log_prefix",
    ),
    "download outside the snapshot": Case(
        "GET",
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_a)}/download/?path=../../etc/shadow",
        lambda w: {},
        "path",
        writers=("owner", "admin", "lead", "member"),
    ),
}


@pytest.fixture
def w(world: World, local_root: Path) -> World:
    from clients import services
    from kernel.tenancy import Actor

    system = Actor.system(world.org)
    world.local_root = local_root
    services.namespace_assign(
        actor=system, location=world.location, client=world.client_b, path="client-b"
    )
    world.client_c = services.client_create(actor=system, name="Client C")
    disk = local_root / world.org.slug / "disk"
    disk.mkdir(parents=True)
    world.local_location = services.location_create(
        actor=system, name="Disk", kind="local", provider="filesystem", prefix=str(disk)
    )
    world.snapshot_a = Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=world.location,
        manifest_id="20260101T000000Z-a",
        taken_at=timezone.now(),
    )
    return world


def _state() -> tuple[Any, ...]:
    """Everything a refused request could have changed: locations and where they point,
    datasets and their paths, client folders, restores and tracked copies."""
    return (
        sorted(StorageLocation.objects.values_list("pk", "prefix", "endpoint_url")),
        sorted(Dataset.objects.values_list("pk", "location_id", "path")),
        sorted(ClientNamespace.objects.values_list("pk", "path")),
        RestoreRun.objects.count(),
        DataCopy.objects.count(),
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(CASES))
def test_an_out_of_space_value_is_refused_for_every_role(
    w: World, as_user: Any, name: str, role: str
) -> None:
    case = CASES[name]
    before = _state()
    client = as_user(getattr(w, role))
    response = getattr(client, case.method.lower())(case.url(w), case.body(w), format="json")
    assert response.status_code in (400, 403, 404), (name, role, response.content)
    if role in case.writers:
        assert response.status_code == 400, (name, role, response.content)
        assert case.field in response.json().get("fields", {}), (name, role, response.json())
    assert _state() == before, (name, role)
