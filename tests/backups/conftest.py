"""Fixtures for the backup service and worker tests: an agency whose admin registers storage
locations (local directories, and buckets on moto's S3 server over HTTP) and datasets whose
files sit in a local directory, the way a primary copy would.

The engine tests (tests/backups/engine/) keep their own fixtures; nothing here shares a name
with theirs except the moto servers, which both re-export from tests.s3server.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils.text import slugify

from backups.engine import DEFAULT_CHUNK_SIZE
from backups.models import BackupPolicy, RestoreRun, RunStatus, Snapshot
from backups.services import restore_request, restore_run_execute
from backups.storage import S3ObjectStore
from clients import services as clients_services
from clients.models import Client, ClientNamespace, Dataset, Organization, StorageLocation
from kernel.tenancy import Actor, actor_for_user
from tests.factories import UserFactory
from tests.s3server import (
    TEST_ACCESS_KEY_ID,
    TEST_REGION,
    TEST_SECRET_ACCESS_KEY,
    s3_endpoint,
    s3_endpoint_with_auth,
)

__all__ = ["s3_endpoint", "s3_endpoint_with_auth"]

# Written into the source files; it must never show up in any object on a backup target.
MARKER = b"PLAINTEXT-MARKER-c41e9b2d"
TEST_CREDENTIALS = {
    "access_key_id": TEST_ACCESS_KEY_ID,
    "secret_access_key": TEST_SECRET_ACCESS_KEY,
}


def sample_files(seed: int = 7) -> dict[str, bytes]:
    """A small tree with the cases a restore must reproduce byte for byte."""
    rng = random.Random(seed)
    big = bytearray(rng.randbytes(DEFAULT_CHUNK_SIZE + 4099))
    # Straddles the engine's chunk boundary, so a per-chunk leak could not hide it.
    big[DEFAULT_CHUNK_SIZE - 7 : DEFAULT_CHUNK_SIZE - 7 + len(MARKER)] = MARKER
    return {
        "README.md": b"# Client project\n" + MARKER + b"\n",
        "empty.txt": b"",
        "data/train.csv": b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 3) for i in range(2000)),
        "data/nested/deeper/notes.txt": b"notes " + MARKER,
        "spaces in name/ünïcödé — file.bin": rng.randbytes(3000),
        "models/weights.bin": bytes(big),
    }


def write_files(root: Path, files: Mapping[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_files(root: Path) -> dict[str, bytes]:
    """Every regular file under `root`, keyed by its '/'-separated path relative to it."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@dataclass
class Agency:
    """One organization seen through its admin, with helpers that go through the services."""

    org: Organization
    admin: Any
    actor: Actor
    client: Client
    root: Path
    s3_endpoint: str
    primary: StorageLocation = field(init=False)

    def __post_init__(self) -> None:
        # Where the datasets' primary copies live: one local directory, one folder per dataset.
        self.primary = self.local_location("Primary storage")

    def local_location(self, name: str, *, client: Client | None = None) -> StorageLocation:
        """A directory in the organization's folder of the local root; dedicated to `client`
        when given (its datasets and restores may then go anywhere in it but its root)."""
        path = self.root / "locations" / slugify(name)
        path.mkdir(parents=True, exist_ok=True)
        return clients_services.location_create(
            actor=self.actor,
            name=name,
            kind="local",
            provider="filesystem",
            prefix=str(path),
            client=client,
        )

    def s3_location(
        self,
        name: str,
        *,
        endpoint: str | None = None,
        bucket: str | None = None,
        create_bucket: bool = True,
        credentials: Mapping[str, str] | None = None,
        prefix: str = "backups",
        provider: str = "minio",
    ) -> StorageLocation:
        """A bucket on moto (or on `endpoint`), credentials sealed by `location_create`."""
        bucket = bucket or f"bucket-{uuid.uuid4().hex[:16]}"
        endpoint = endpoint or self.s3_endpoint
        if create_bucket:
            self.raw_store(bucket, endpoint).create_bucket()
        return clients_services.location_create(
            actor=self.actor,
            name=name,
            kind="s3",
            provider=provider,
            endpoint_url=endpoint,
            region=TEST_REGION,
            bucket=bucket,
            prefix=prefix,
            credentials=dict(credentials or TEST_CREDENTIALS),
        )

    def raw_store(self, bucket: str, endpoint: str | None = None) -> S3ObjectStore:
        """The bucket as the test sees it, bypassing the application."""
        return S3ObjectStore(
            bucket=bucket,
            endpoint_url=endpoint or self.s3_endpoint,
            region=TEST_REGION,
            access_key_id=TEST_ACCESS_KEY_ID,
            secret_access_key=TEST_SECRET_ACCESS_KEY,
            max_attempts=2,
        )

    def dataset(
        self,
        name: str,
        *,
        kind: str = "raw_client_data",
        files: Mapping[str, bytes] | None = None,
        location: StorageLocation | None = None,
        **fields: Any,
    ) -> Dataset:
        """Register a dataset through `dataset_register`; its files go under the primary copy,
        in the client's folder `datasets/` of the (shared) location, assigned on first use."""
        location = location or self.primary
        folder = "datasets"
        if location.client_id is None:
            # "datasets" for the agency's client; another client (a test may switch
            # `self.client`) gets a folder named by its slug when that one is taken.
            taken = ClientNamespace.objects.filter(location=location, path=folder).exclude(
                client=self.client
            )
            folder = self.client_folder(location, self.client.slug if taken.exists() else folder)
        dataset = clients_services.dataset_register(
            actor=self.actor,
            client=self.client,
            name=name,
            kind=kind,
            classification="confidential",
            location=location,
            path=f"{folder}/{slugify(name)}",
            **fields,
        )
        if files is not None:
            write_files(self.source_dir(dataset), files)
        return dataset

    def client_folder(self, location: StorageLocation, path: str) -> str:
        """The client's folder on a shared location (its namespace), assigned if missing."""
        found = ClientNamespace.objects.filter(location=location, client=self.client).first()
        if found is None:
            found = clients_services.namespace_assign(
                actor=self.actor, location=location, client=self.client, path=path
            )
        return found.path

    def source_dir(self, dataset: Dataset) -> Path:
        return Path(dataset.location.prefix) / dataset.path

    def policy(self, default_for: str) -> BackupPolicy:
        return BackupPolicy.objects.get(organization=self.org, default_for=default_for)

    def restore(self, snapshot: Snapshot, destination: Path) -> dict[str, bytes]:
        """Restore a snapshot to a fresh local directory (in this process) and read it back.
        A directory outside every location is the operator's (actor None, as `manage.py
        restore_snapshot --to` does): tenants restore only into their own space."""
        assert not destination.exists()
        restore = restore_request(
            actor=None,
            snapshot=snapshot,
            destination_path=str(destination),
            enqueue=False,
        )
        done = restore_run_execute(str(restore.public_id))
        assert isinstance(done, RestoreRun)
        assert done.status == RunStatus.SUCCEEDED, done.error
        return read_files(destination)


def make_agency(s3_endpoint: str, *, slug: str = "agency") -> Agency:
    """An organization created through the services (so its default policies exist), an admin
    who acts in it, and one client. Its local directories live in its folder of the test's
    local root (`<AGENCYOPS_LOCAL_ROOTS>/<slug>/`), as the operator grants."""
    owner = UserFactory(username=f"{slug}-owner")
    org = clients_services.organization_create(name=f"Agency {slug}", owner=owner, slug=slug)
    owner_actor = actor_for_user(owner)
    assert owner_actor is not None
    admin = UserFactory(username=f"{slug}-admin")
    clients_services.membership_add(actor=owner_actor, user=admin, role="admin")
    actor = actor_for_user(admin)
    assert actor is not None
    client = clients_services.client_create(actor=actor, name=f"Client of {slug}")
    root = Path(settings.AGENCYOPS_LOCAL_ROOTS[0]) / org.slug
    root.mkdir(parents=True, exist_ok=True)
    return Agency(
        org=org, admin=admin, actor=actor, client=client, root=root, s3_endpoint=s3_endpoint
    )


@pytest.fixture
def new_agency(db: Any, s3_endpoint: str) -> Callable[[str], Agency]:
    """`new_agency(slug)`: another organization, for tests that need more than one."""

    def make(slug: str) -> Agency:
        return make_agency(s3_endpoint, slug=slug)

    return make


@pytest.fixture
def agency(new_agency: Callable[[str], Agency]) -> Agency:
    return new_agency("agency")
