"""Downloading one file of a snapshot: decrypted, checked against its sha256, logged."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from backups import engine, signals
from backups.engine.errors import EngineError
from backups.models import CopyKind, DataCopy, Snapshot
from backups.services.archive import archive_retrieve_for_read
from backups.services.policies import dataset_data_key
from backups.services.stores import repository_base, store_for_location
from backups.storage import LocalObjectStore, StorageError
from clients.models import LifecycleState
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor


@dataclass
class DownloadedFile:
    """A verified plaintext copy in a private temporary directory; `cleanup()` removes it."""

    path: Path
    name: str
    size: int
    sha256: str
    directory: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def open(self) -> _SelfRemovingFile:
        """The file for reading; closing it (the response does) removes the plaintext copy."""
        return _SelfRemovingFile(self.path, self.cleanup)


class _SelfRemovingFile(io.FileIO):
    def __init__(self, path: Path, on_close: Callable[[], None]) -> None:
        super().__init__(path, "rb")
        self._on_close = on_close

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._on_close()


def _fetch(snapshot: Snapshot, clean: str) -> tuple[engine.FileEntry, Path]:
    """The file's entry and a private directory holding it, restored and checked."""
    dataset = snapshot.dataset
    store = store_for_location(snapshot.location)
    base = repository_base(snapshot.location, dataset)
    data_key = dataset_data_key(dataset)
    entry = engine.find_entry(store, base, data_key, snapshot.manifest_id, clean)
    if entry is None:
        raise NotFound(f"No file {clean!r} in this snapshot.")
    # A request cannot wait hours: archived content is asked for and checked once; until it
    # is retrieved the download is refused, saying so (ArchiveRetrievalPending, 409 in the API).
    archive_retrieve_for_read(
        store=store,
        base=base,
        data_key=data_key,
        manifest_ids=[snapshot.manifest_id],
        path_prefix=clean,
        max_wait_seconds=0,
    )
    directory = Path(tempfile.mkdtemp(prefix="agencyops-download-"))
    try:
        engine.restore(
            store,
            base,
            data_key,
            snapshot.manifest_id,
            LocalObjectStore(directory),
            path_prefix=clean,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return entry, directory


def snapshot_file_download(
    *, actor: Actor, snapshot: Snapshot, path: str, origin: RequestOrigin = NO_ORIGIN
) -> DownloadedFile:
    """One file of a snapshot for a person with `restore` on the dataset. The file is restored
    through the engine (every chunk authenticated, the whole file's sha256 checked) into a
    private temporary directory, and the read is recorded in the access log (`download`).
    Content in an archive class is retrieved first; while that is under way the download is
    refused (ArchiveRetrievalPending names how many objects are still archived)."""
    dataset = snapshot.dataset
    actor.require_level(
        "restore", client_id=dataset.client_id, dataset_id=dataset.pk, action="download data"
    )
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(
            f"The dataset is {dataset.get_lifecycle_state_display().lower()}: its copies are "
            "being deleted, none is handed out."
        )
    try:
        clean = engine.check_manifest_path(path.strip("/"))
    except engine.UnsafePath:
        raise ValidationFailed("Invalid file path.", fields={"path": "Not a safe path."}) from None
    try:
        entry, directory = _fetch(snapshot, clean)
    except (StorageError, EngineError) as error:  # a copy unreadable now is a 409, not a 500
        raise Conflict(f"The copy could not be read: {error}") from None
    with transaction.atomic():
        # A copy handed out: it cannot be recalled, so a deletion certificate names it.
        DataCopy.objects.create(
            organization=dataset.organization,
            dataset=dataset,
            snapshot=snapshot,
            kind=CopyKind.DOWNLOAD,
            path=clean,
            files=1,
            bytes=entry.size,
            sha256=entry.sha256,
            made_by=actor.user,
            made_at=timezone.now(),
        )
        signals.data_accessed.send(
            sender=Snapshot,
            organization=dataset.organization,
            actor=actor,
            action="download",
            dataset=dataset,
            snapshot=snapshot,
            details={"path": clean, "size": entry.size, "sha256": entry.sha256},
            origin=origin,
        )
    return DownloadedFile(
        path=directory / clean,
        name=clean.rsplit("/", 1)[-1],
        size=entry.size,
        sha256=entry.sha256,
        directory=directory,
    )
