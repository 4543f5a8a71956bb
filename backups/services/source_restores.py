"""Restores of git repositories and databases: where a tenant may put them, and carrying them
out (the engine restores the snapshot's files into staging; git or the database's own client
then makes the repository or the database of them).

- A database goes into a **new** database on a database server location of the dataset's own
  client and engine. It is never a live dataset's primary database, the dataset's own included.
  An existing database is refused unless `force`, and `force` replaces only a database this
  dataset's own earlier restore made. After the restore every table's row count is compared with
  the snapshot's.
- A repository goes into a folder of a bucket or directory (as a bare repository, written
  through the store like any restored file), into a directory (the operator), or it is pushed
  with --mirror to an empty repository on a git location in the client's space. That may be the
  dataset's own repository after it was deleted and made again, never another dataset's.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from backups import engine
from backups.models import CopyKind, DataCopy, RestoreRun, RunStatus, Snapshot
from backups.services import sources
from backups.services.archive import archive_retrieve_for_read
from backups.services.policies import dataset_data_key
from backups.services.runs import RUN_ERRORS, _failed, _with_progress
from backups.services.stores import location_key, repository_base, store_for_location
from backups.storage import LocalObjectStore
from clients.models import DATABASE_KINDS, Dataset, LocationKind, StorageLocation
from clients.services import (
    database_path_check,
    relative_path_clean,
)
from kernel.exceptions import ValidationFailed
from kernel.sources import SourceNameInvalid, database_name_check, repository_path_check


def _database_destination(
    dataset: Dataset, location: StorageLocation, path: str, *, force: bool
) -> str:
    if location.kind != dataset.location.kind:
        raise ValidationFailed(
            f"A {dataset.location.get_kind_display()} dump is restored into a server of the "
            "same kind.",
            fields={"destination_location": f"Pick a {dataset.location.get_kind_display()}."},
        )
    try:
        name = database_name_check(path)
    except SourceNameInvalid as exc:
        raise ValidationFailed(str(exc), fields={"destination_path": str(exc)}) from None
    # Never over a live dataset's primary database (this one's included): the same rule as
    # registering one, on the same server through any location.
    database_path_check(
        location=location, client=dataset.client, path=name, field="destination_path"
    )
    if (
        force
        and not DataCopy.objects.filter(
            dataset=dataset, kind=CopyKind.DATABASE, location=location, path=name, removed_at=None
        ).exists()
    ):
        raise ValidationFailed(
            "force replaces only a database this dataset's own earlier restore made.",
            fields={"force": "Only over a database an earlier restore of this dataset made."},
        )
    return name


def _repository_destination(dataset: Dataset, location: StorageLocation, path: str) -> str:
    from backups.services.restores import destination_in_client_space

    try:
        repository_path_check(path)
    except SourceNameInvalid as exc:
        raise ValidationFailed(str(exc), fields={"destination_path": str(exc)}) from None
    return destination_in_client_space(
        dataset=dataset,
        location=location,
        path=path,
        overlap=(
            "That repository is another dataset's.",
            "Another dataset's repository; name an empty one.",
        ),
    )


def source_destination_check(
    *,
    dataset: Dataset,
    location: StorageLocation | None,
    path: str,
    force: bool,
    operator: bool,
) -> str:
    """Where a restore of a git or database dataset may go (see the module docstring); the
    cleaned destination path, or a 400 with a field message."""
    from backups.services.restores import _safe_directory, restore_destination_check

    is_database = dataset.location.kind in DATABASE_KINDS
    if location is None:
        if operator and not is_database:
            return _safe_directory(path)
        raise ValidationFailed(
            "Pick the location to restore into.",
            fields={
                "destination_location": "A database server location."
                if is_database
                else "A storage location or a git location."
            },
        )
    if location.organization_id != dataset.organization_id:
        raise ValidationFailed("Unknown location.", fields={"destination_location": "Not found."})
    if is_database:
        return _database_destination(dataset, location, path, force=force)
    if force:
        raise ValidationFailed(
            "force is for database restores; a push goes only to an empty repository.",
            fields={"force": "Only for database restores."},
        )
    if location.kind == LocationKind.GIT:
        return _repository_destination(dataset, location, path)
    if not location.is_store:
        raise ValidationFailed(
            "A repository is restored into a bucket, a directory or a git location.",
            fields={"destination_location": "Pick a bucket, a directory or a git location."},
        )
    if operator:
        return relative_path_clean(path, field="destination_path")
    return restore_destination_check(dataset=dataset, location=location, path=path)


# --- carrying out ---


def _staging(restore: RestoreRun) -> Path:
    parent = sources.scratch_root() / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    directory = parent / f"restore-{restore.public_id}-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o700)
    return directory


def _apply(restore: RestoreRun, staged: Path, work: Path) -> tuple[sources.Applied, CopyKind]:
    dataset = restore.dataset
    location = (
        StorageLocation.objects.get(pk=restore.destination_location_id)
        if restore.destination_location_id
        else None
    )
    if dataset.location.kind in DATABASE_KINDS:
        if location is None:  # never: a database restore names its server (checked)
            raise ValidationFailed("A database restore needs a database server location.")
        applied = sources.database_apply(
            staged, location, restore.destination_path, force=restore.force
        )
        return applied, CopyKind.DATABASE
    if location is None:
        destination = Path(restore.destination_path)
        if destination.exists() and any(destination.iterdir()):
            raise ValidationFailed(
                "The directory is not empty.", fields={"destination_path": "Not empty."}
            )
        if destination.exists():
            destination.rmdir()
        return sources.git_apply_to_directory(staged, destination), CopyKind.DIRECTORY
    if location.kind == LocationKind.GIT:
        return (
            sources.git_apply_push(staged, work, location, restore.destination_path),
            CopyKind.PUSHED,
        )
    store = store_for_location(location, create=True)
    prefix = location_key(location, restore.destination_path)
    return sources.git_apply_to_store(staged, work, store, prefix), CopyKind.RESTORE


def source_restore_execute(
    restore: RestoreRun,
    snapshot: Snapshot,
    *,
    final_attempt: bool,
    on_progress: Callable[[int, int], None] | None,
) -> RestoreRun:
    """A claimed restore of a git or database dataset: the snapshot's files into a private
    staging directory (verified by the engine), then the repository or database made of them,
    then the copy recorded. The staging directory is removed whatever happens."""
    from backups.services.restores import restored_copy_record

    dataset = restore.dataset
    staged = _staging(restore)
    work = staged.with_name(staged.name + "-work")
    work.mkdir(mode=0o700)
    try:
        data_key = dataset_data_key(dataset)
        store = store_for_location(snapshot.location)
        base = repository_base(snapshot.location, dataset)
        archive_retrieve_for_read(
            store=store, base=base, data_key=data_key, manifest_ids=[snapshot.manifest_id]
        )
        files = staged / "files"
        result = _with_progress(
            lambda progress: engine.restore(
                store,
                base,
                data_key,
                snapshot.manifest_id,
                LocalObjectStore(files, create=True),
                "",
                progress=progress,
            ),
            RestoreRun,
            restore.pk,
            on_progress,
        )
        applied, kind = _apply(restore, files, work)
    except RUN_ERRORS as exc:
        return _failed(RestoreRun, restore.pk, exc, final_attempt=final_attempt)  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    now = timezone.now()
    with transaction.atomic():
        RestoreRun.objects.filter(pk=restore.pk).update(
            status=RunStatus.SUCCEEDED,
            finished_at=now,
            error="",
            files=result.files_restored,
            bytes=result.bytes_restored,
            bytes_done=result.bytes_restored,
            bytes_total=result.bytes_restored,
            outcome={"made": applied.description, **applied.facts},
        )
        restored_copy_record(restore, files=result.files_restored, at=now, kind=kind)
    return RestoreRun.objects.get(pk=restore.pk)
