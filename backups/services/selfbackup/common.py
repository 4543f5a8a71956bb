"""What the self-backup and the restore share: the repository's names and format, the error,
the result types, the key and the chosen places (storage locations and operator directories)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import DatabaseError

from backups.models import DefaultFor, PolicyTarget
from backups.services.stores import location_key
from clients.models import Organization, StorageLocation
from kernel.exceptions import ApplicationError

logger = logging.getLogger(__name__)

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
class OperatorDirectory:
    """A directory of the operator's own named in AGENCYOPS_SELF_BACKUP_LOCATIONS (checked to
    lie apart from every local root, so no tenant can read, keep or delete what is stored)."""

    path: Path

    @property
    def name(self) -> str:
        return f"operator directory {self.path}"

    @property
    def uri(self) -> str:
        return self.path.as_uri()


# Where a self-backup goes: a storage location (a tenant's inventory row, named by its id) or a
# directory of the operator's.
SelfBackupPlace = StorageLocation | OperatorDirectory


@dataclass(frozen=True)
class SelfBackupTarget:
    location_public_id: uuid.UUID | None  # None: an operator directory
    location_name: str
    uri: str
    snapshot_id: str | None
    error: str = ""
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.snapshot_id is not None

    @property
    def entry(self) -> str:
        """The place as AGENCYOPS_SELF_BACKUP_LOCATIONS and `--location` name it."""
        return self.uri if self.location_public_id is None else str(self.location_public_id)


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
        """The places worth trying again soon, as entries `self_backup_locations` takes."""
        return [t.entry for t in self.targets if t.transient]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created_at"] = self.created_at.isoformat()
        doc["ok"] = self.ok
        for target in doc["targets"]:
            if target["location_public_id"] is not None:
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


def file_uri_path(uri: str) -> Path:
    """The absolute path a `file:///dir` address names (SelfBackupError for any other form)."""
    parts = urlsplit(uri)
    path = unquote(parts.path)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise SelfBackupError(f"A file address is file:///absolute/dir, not {uri!r}.")
    return Path(path.rstrip("/") or "/")


def operator_directory_check(value: str) -> OperatorDirectory:
    """An AGENCYOPS_SELF_BACKUP_LOCATIONS directory (`file:///dir` or `/dir`). Rule: it must lie
    apart from every local root, neither inside one (tenant space: the organization owning that
    folder could read, keep or delete every tenant's dump) nor containing one. Symlinks are
    followed as the kernel would, and the check runs again on every backup, with the roots of
    that moment."""
    path = file_uri_path(value) if value.startswith("file:") else Path(value)
    if not path.is_absolute() or "\x00" in value:
        raise SelfBackupError(f"A self-backup directory needs an absolute path, not {value!r}.")
    real = Path(os.path.realpath(path))
    for configured in settings.AGENCYOPS_LOCAL_ROOTS:
        root = Path(os.path.realpath(configured))
        if real == root or real.is_relative_to(root):
            raise SelfBackupError(
                f"The self-backup directory {path} lies inside the local root {root}, which "
                "holds tenants' storage: give AGENCYOPS_SELF_BACKUP_LOCATIONS a directory of "
                "the operator's outside every AGENCYOPS_LOCAL_ROOTS entry."
            )
        if root.is_relative_to(real):
            raise SelfBackupError(
                f"The self-backup directory {path} contains the local root {root}, which holds "
                "tenants' storage: give AGENCYOPS_SELF_BACKUP_LOCATIONS a directory of the "
                "operator's outside every AGENCYOPS_LOCAL_ROOTS entry."
            )
    return OperatorDirectory(real)


def _is_directory_entry(value: str) -> bool:
    return value.startswith("file:") or value.startswith("/")


def _organization_ids(limit: int) -> list[int]:
    return list(Organization.objects.order_by("pk").values_list("pk", flat=True)[:limit])


_UNCONFIGURED = (
    "Several organizations share this installation, so AgencyOps' own backup (every "
    "organization's rows and sealed keys) is never written into one organization's storage: set "
    "AGENCYOPS_SELF_BACKUP_LOCATIONS to a directory of the operator's (file:///dir) or to "
    "storage location ids the operator controls."
)


def self_backup_locations(location_ids: Sequence[str] | None = None) -> list[SelfBackupPlace]:
    """The chosen entries, else AGENCYOPS_SELF_BACKUP_LOCATIONS; an entry is a storage location
    id (UUID) or an operator directory (see `operator_directory_check`). With neither, and only
    then, the targets of the built-in "records" policy — and that only while the installation
    holds a single organization: with several, the dump holds every organization's data and
    must never land in one organization's storage, so it is an error (SelfBackupError, nothing
    written) until the operator names a place. A system task: crosses tenants."""
    wanted = [str(value).strip() for value in (location_ids or [])] or [
        str(value).strip() for value in settings.AGENCYOPS_SELF_BACKUP_LOCATIONS
    ]
    locations = StorageLocation.objects.unscoped_for_system_task().order_by("pk")
    if not wanted:
        organizations = _organization_ids(limit=2)
        if len(organizations) > 1:
            raise SelfBackupError(f"{_UNCONFIGURED} Nothing was written.")
        ids = PolicyTarget.objects.filter(
            policy__default_for=DefaultFor.RECORDS, policy__organization_id__in=organizations
        ).values("location_id")
        return list(locations.filter(pk__in=ids).select_related("organization"))
    entries: list[uuid.UUID | OperatorDirectory] = []
    for value in dict.fromkeys(wanted):
        if _is_directory_entry(value):
            entries.append(operator_directory_check(value))
            continue
        try:
            entries.append(uuid.UUID(value))
        except ValueError:
            raise SelfBackupError(
                f"Not a location id (UUID) nor an operator directory (file:///dir or /dir): "
                f"{value!r} in {wanted!r}."
            ) from None
    parsed = {entry for entry in entries if isinstance(entry, uuid.UUID)}
    found = {
        location.public_id: location
        for location in locations.filter(public_id__in=parsed).select_related("organization")
    }
    missing = parsed - set(found)
    if missing:
        raise SelfBackupError(f"No storage location {', '.join(sorted(map(str, missing)))}.")
    chosen = [found[entry] if isinstance(entry, uuid.UUID) else entry for entry in entries]
    # The same directory named twice (a path and its file:// form, a symlink) is written once.
    return list(dict.fromkeys(chosen))


def self_backup_setting_problem() -> str | None:
    """What is wrong with where the self-backup would go, for a warning at start-up: a refused
    entry of AGENCYOPS_SELF_BACKUP_LOCATIONS (checked without the database), or several
    organizations and nothing set (one query, of at most two rows). None when nothing is."""
    entries = [str(value).strip() for value in settings.AGENCYOPS_SELF_BACKUP_LOCATIONS]
    for value in entries:
        if _is_directory_entry(value):
            try:
                operator_directory_check(value)
            except SelfBackupError as exc:
                return exc.message
    if entries:
        return None
    if len(_organization_ids(limit=2)) > 1:
        return f"{_UNCONFIGURED} Until then the nightly self-backup writes nowhere and fails."
    return None


def self_backup_startup_warning() -> None:
    """Log a WARNING when the self-backup is not set up right (`self_backup_setting_problem`).
    A hint for the operator at start (serve_all, a Celery worker): never a reason not to start,
    so a database that cannot answer yet (not migrated, not reachable) only skips the check."""
    try:
        problem = self_backup_setting_problem()
    except DatabaseError as exc:
        logger.info("self-backup configuration not checked: the database did not answer (%s)", exc)
        return
    if problem:
        logger.warning("%s", problem)
