"""What the self-backup and the restore share: the repository's names and format, the error,
the result types, the key and the chosen locations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from agencyops.exceptions import ApplicationError
from backups.models import DefaultFor, PolicyTarget
from backups.services.stores import location_key
from clients.models import StorageLocation

SELF_REPOSITORY = "_agencyops-self"
KEY_CONTEXT = b"agencyops-self-backup"
MANIFEST_NAME = "manifest.json"
MANIFEST_KIND = "agencyops-self-backup"
FORMAT_VERSION = 1
DUMP_NAMES = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}


class SelfBackupError(ApplicationError):
    """The self-backup or restore cannot go on; the message says what to do."""

    code = "self_backup"


@dataclass(frozen=True)
class SelfBackupTarget:
    location_public_id: uuid.UUID
    location_name: str
    uri: str
    snapshot_id: str | None
    error: str = ""
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.snapshot_id is not None


@dataclass(frozen=True)
class SelfBackupResult:
    created_at: datetime
    vendor: str
    dump_bytes: int
    dump_sha256: str
    counts: dict[str, int]
    targets: tuple[SelfBackupTarget, ...]

    @property
    def ok(self) -> bool:
        return bool(self.targets) and all(t.ok for t in self.targets)

    @property
    def retry_location_ids(self) -> list[str]:
        return [str(t.location_public_id) for t in self.targets if t.transient]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created_at"] = self.created_at.isoformat()
        doc["ok"] = self.ok
        for target in doc["targets"]:
            target["location_public_id"] = str(target["location_public_id"])
        return doc


@dataclass(frozen=True)
class SelfSnapshot:
    id: str
    time: datetime
    bytes: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class CountCheck:
    name: str
    expected: int | None
    restored: int | None

    @property
    def ok(self) -> bool:
        return self.expected == self.restored


# --- keys and places ---


def self_backup_data_key(master: bytes) -> bytes:
    """The self repository's data key: HKDF of the master key, so only the master key is needed
    to rebuild it (it is also stored wrapped in the repository's `key` object)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_CONTEXT).derive(master)


def self_repository_base(location: StorageLocation) -> str:
    return location_key(location, SELF_REPOSITORY)


def self_backup_locations(location_ids: Sequence[str] | None = None) -> list[StorageLocation]:
    """The chosen ids, else AGENCYOPS_SELF_BACKUP_LOCATIONS, else every location that is a
    target of an organization's built-in "records" policy. A system task: crosses tenants."""
    wanted = list(location_ids or settings.AGENCYOPS_SELF_BACKUP_LOCATIONS)
    locations = StorageLocation.objects.unscoped_for_system_task().order_by("pk")
    if not wanted:
        ids = PolicyTarget.objects.filter(policy__default_for=DefaultFor.RECORDS).values(
            "location_id"
        )
        return list(locations.filter(pk__in=ids).select_related("organization"))
    try:
        parsed = {uuid.UUID(str(value)) for value in wanted}
    except ValueError:
        raise SelfBackupError(f"Not a location id (UUID) in {wanted!r}.") from None
    found = list(locations.filter(public_id__in=parsed).select_related("organization"))
    missing = parsed - {location.public_id for location in found}
    if missing:
        raise SelfBackupError(f"No storage location {', '.join(sorted(map(str, missing)))}.")
    return found
