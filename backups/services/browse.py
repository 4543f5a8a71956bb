"""Browsing a snapshot: one folder's entries at a time, read from its streamed file list, and
the checks a restore form needs before it asks for a restore (a path filter that matches)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from backups import engine
from backups.models import Snapshot
from backups.services.policies import dataset_data_key
from backups.services.stores import repository_base, store_for_location
from backups.storage import StorageError
from clients.models import LifecycleState
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.tenancy import Actor

# Entries shown on one page of a folder: a folder of 200,000 files is read, never held.
FOLDER_PAGE_SIZE = 200


@dataclass
class FolderEntry:
    """A child of the folder: a file (its own facts) or a folder (what lies under it)."""

    name: str
    path: str
    is_folder: bool
    size: int = 0
    files: int = 1
    modified: datetime | None = None
    sha256: str = ""


@dataclass
class SnapshotFolder:
    """One page of a folder: `entries` from `offset`, of `total` children in all."""

    folder: str
    entries: list[FolderEntry] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    limit: int = FOLDER_PAGE_SIZE

    @property
    def end(self) -> int:
        """How many entries of the folder come up to the last one shown."""
        return self.offset + len(self.entries)

    @property
    def next_offset(self) -> int | None:
        return self.end if self.end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset else None

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        """(name, path) of each folder from the root down to this one."""
        parts = self.folder.split("/") if self.folder else []
        return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def _folder_clean(folder: str) -> str:
    cleaned = folder.strip().strip("/")
    if not cleaned:
        return ""
    try:
        return engine.check_manifest_path(cleaned)
    except engine.UnsafePath:
        raise ValidationFailed("Invalid folder.", fields={"path": "Not a safe path."}) from None


def _stream(snapshot: Snapshot) -> Iterator[engine.FileEntry]:
    store = store_for_location(snapshot.location)
    base = repository_base(snapshot.location, snapshot.dataset)
    return engine.snapshot_files(
        store, base, dataset_data_key(snapshot.dataset), snapshot.manifest_id
    )


def snapshot_folder_list(
    *,
    actor: Actor,
    snapshot: Snapshot,
    folder: str = "",
    offset: int = 0,
    limit: int | None = None,
) -> SnapshotFolder:
    """The children of `folder` in the snapshot, from `offset`, at most `limit` of them, and how
    many there are. Reading the file list shows client file names: `restore` on the dataset,
    as a download needs. The list is streamed one segment at a time in path order, where each
    child folder's files are contiguous, so only the page's entries are held. A folder with
    nothing under it is 404; a copy that cannot be read now is 409."""
    dataset = snapshot.dataset
    actor.require_level(
        "restore", client_id=dataset.client_id, dataset_id=dataset.pk, action="browse snapshots"
    )
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(
            f"The dataset is {dataset.get_lifecycle_state_display().lower()}: its copies are "
            "being deleted, none is read."
        )
    folder = _folder_clean(folder)
    offset = max(0, offset)
    limit = max(1, min(limit or FOLDER_PAGE_SIZE, 1000))
    prefix = f"{folder}/" if folder else ""
    result = SnapshotFolder(folder=folder, offset=offset, limit=limit)
    current: FolderEntry | None = None
    index = -1
    try:
        for entry in _stream(snapshot):
            if not entry.path.startswith(prefix):
                if prefix and entry.path > prefix:
                    break  # path order: nothing further lies under the folder
                continue
            rest = entry.path[len(prefix) :]
            name, _, below = rest.partition("/")
            if current is None or current.name != name or not below or not current.is_folder:
                index += 1
                current = FolderEntry(
                    name=name,
                    path=prefix + name,
                    is_folder=bool(below),
                    size=0,
                    files=0,
                )
                if offset <= index < offset + limit:
                    result.entries.append(current)
            current.size += entry.size
            current.files += 1
            if current.modified is None or entry.mtime > current.modified:
                current.modified = entry.mtime
            if not current.is_folder:
                current.sha256 = entry.sha256
    except (StorageError, engine.EngineError, ValidationFailed) as error:  # a destroyed key too
        raise Conflict(f"The copy on {snapshot.location.name} could not be read: {error}") from None
    result.total = index + 1
    if folder and not result.total:
        raise NotFound(f"No folder {folder!r} in this snapshot.")
    return result


def restore_path_prefix_check(*, snapshot: Snapshot, path_prefix: str) -> str:
    """A restore of part of a snapshot names a file or folder of it: refused (400, on the
    field) when nothing lies under the path, before the worker would find out. Returns the
    cleaned path ("" restores everything and reads nothing). The file list is streamed and
    read only as far as the first match."""
    prefix = path_prefix.strip().strip("/")
    if not prefix:
        return ""
    if "\x00" in prefix or ".." in prefix.split("/"):
        raise ValidationFailed(
            "Invalid path prefix.", fields={"path_prefix": "May not contain '..'."}
        )
    try:
        for entry in _stream(snapshot):
            if entry.path == prefix or entry.path.startswith(prefix + "/"):
                return prefix
            if entry.path > prefix + "/":
                break
    except (StorageError, engine.EngineError, ValidationFailed) as error:  # a destroyed key too
        raise Conflict(f"The copy on {snapshot.location.name} could not be read: {error}") from None
    raise ValidationFailed(
        f"No file of this snapshot lies under '{prefix}'; nothing would be restored.",
        fields={"path_prefix": f"Nothing in the snapshot of this time lies under '{prefix}'."},
    )
