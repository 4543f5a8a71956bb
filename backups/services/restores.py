"""Restores: point in time, where a tenant may restore to, execution, the copy each one wrote;
and verifying a snapshot. Claims, heartbeats and failure rules are the runs' (runs.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from backups import engine, signals
from backups.models import CopyKind, DataCopy, RestoreRun, RunStatus, Snapshot
from backups.services.archive import (
    ArchiveProgress,
    archive_retrieve_for_read,
    retrieval_done_message,
)
from backups.services.policies import dataset_data_key
from backups.services.runs import (
    RUN_ERRORS,
    _beat,
    _claim,
    _enqueue_restore,
    _failed,
    _finish_failed,
    _with_progress,
)
from backups.services.source_restores import source_destination_check, source_restore_execute
from backups.services.sources import is_source_backed
from backups.services.stores import location_key, repository_base, store_for_location
from backups.storage import LocalObjectStore, ObjectStore, StorageError
from clients.models import DATABASE_KINDS, Dataset, LifecycleState, StorageLocation
from clients.services import (
    client_space,
    client_space_check,
    other_dataset_overlapping,
    relative_path_clean,
)
from kernel.exceptions import Conflict, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor


def snapshot_as_of(
    dataset: Dataset, as_of: datetime, *, location: StorageLocation | None = None
) -> Snapshot | None:
    """The newest snapshot taken at or before `as_of` (point in time); on `location` (one
    copy, a target) when given."""
    qs = Snapshot.objects.filter(dataset=dataset, taken_at__lte=as_of, forgotten_at__isnull=True)
    if location is not None:
        qs = qs.filter(location=location)
    return qs.select_related("location").first()


def restore_point_pick(
    *, dataset: Dataset, as_of: datetime | None, location: StorageLocation | None = None
) -> Snapshot:
    """The snapshot a point-in-time restore reads: the newest at or before `as_of` (now when
    None) on `location` (any copy when None). 400 on `as_of` when there is none."""
    snapshot = snapshot_as_of(dataset, as_of or timezone.now(), location=location)
    if snapshot is None:
        where = f" on {location.name}" if location is not None else ""
        raise ValidationFailed(
            f"No snapshot was taken at or before that time{where}.",
            fields={"as_of": "No snapshot at or before this time; pick a later one."},
        )
    return snapshot


def _safe_directory(path: str) -> str:
    if not path or "\x00" in path or not Path(path).is_absolute():
        raise ValidationFailed(
            "The destination must be an absolute directory path.",
            fields={"destination_path": "Give an absolute directory path."},
        )
    if ".." in Path(path).parts:
        raise ValidationFailed(
            "The destination may not contain '..'.",
            fields={"destination_path": "May not contain '..'."},
        )
    return path


def _restorable(dataset: Dataset) -> None:
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(
            f"The dataset is {dataset.get_lifecycle_state_display().lower()}: its copies are "
            "being deleted, none is made."
        )


def restore_destination_check(
    *, dataset: Dataset, location: StorageLocation | None, path: str
) -> str:
    """Where a tenant may restore: into a storage location, inside the dataset's own client's
    space there (its folder on a shared location, anywhere but the root of a location dedicated
    to it), clear of the product's own folders (backup repositories) and of every other
    dataset's primary copy. Returns the cleaned path; 400 with a field message otherwise."""
    if location is None:
        raise ValidationFailed(
            "Restores go into a storage location.",
            fields={"destination_location": "Pick the storage location to restore into."},
        )
    if location.organization_id != dataset.organization_id:
        raise ValidationFailed("Unknown location.", fields={"destination_location": "Not found."})
    if not location.is_store:
        raise ValidationFailed(
            f"{location.name} is a {location.get_kind_display()}: files are restored into a "
            "bucket or a directory.",
            fields={"destination_location": "Pick a bucket or a directory."},
        )
    return destination_in_client_space(
        dataset=dataset,
        location=location,
        path=path,
        overlap=(
            "The destination overlaps another dataset's primary copy.",
            "Overlaps another dataset's data; pick another folder.",
        ),
    )


def destination_in_client_space(
    *, dataset: Dataset, location: StorageLocation, path: str, overlap: tuple[str, str]
) -> str:
    """The cleaned destination path, inside the dataset's client's space on the location and
    clear of every other dataset's primary copy (`overlap`: the message and the field message
    when it is not)."""
    cleaned = client_space_check(
        location=location,
        client=dataset.client,
        path=path,
        field="destination_path",
        allow_whole=False,
        location_field="destination_location",
    )
    if other_dataset_overlapping(location=location, path=cleaned, exclude=dataset) is not None:
        raise ValidationFailed(overlap[0], fields={"destination_path": overlap[1]})
    return cleaned


def restore_default_path(
    dataset: Dataset, location: StorageLocation, *, now: datetime | None = None
) -> str:
    """Where a restore goes when no folder is named: `restores/<dataset>-<time>`, inside the
    client's space on the location (its folder there when the location is shared)."""
    if location.kind in DATABASE_KINDS:
        # A new database, named after the dataset's: `<name>_restore_<time>`.
        return f"{dataset.path[:40]}_restore_{(now or timezone.now()):%Y%m%d%H%M%S}"
    leaf = f"restores/{dataset.public_id}-{(now or timezone.now()):%Y%m%dT%H%M%SZ}"
    space = client_space(location, dataset.client)
    return f"{space}/{leaf}" if space else leaf


def restore_destination_occupied(location: StorageLocation, path: str) -> bool:
    """Whether the folder `path` of a storage location already holds a file (one listed key
    is enough to know)."""
    prefix = location_key(location, path).rstrip("/") + "/"
    return next(iter(store_for_location(location).list(prefix)), None) is not None


def _destination_empty_check(location: StorageLocation, path: str) -> None:
    try:
        occupied = restore_destination_occupied(location, path)
    except (StorageError, ValidationFailed):
        # Unreachable now: the restore could not write there either, and its run fails saying
        # so; refusing here would only hide that message behind this one.
        return
    if occupied:
        raise Conflict(
            f"{location.name} already holds files in {path}: the restore would overwrite them. "
            "Confirm the overwrite, or pick an empty folder.",
            fields={"overwrite": "Tick to overwrite the files already there."},
        )


@transaction.atomic
def restore_request(
    *,
    actor: Actor | None,
    snapshot: Snapshot,
    destination_path: str,
    destination_location: StorageLocation | None = None,
    path_prefix: str = "",
    is_drill: bool = False,
    force: bool = False,
    overwrite: bool = True,
    enqueue: bool = True,
    origin: RequestOrigin = NO_ORIGIN,
) -> RestoreRun:
    """Ask for a restore. Needs `restore` on the dataset. An actor (a person, a token, a task
    acting for the organization) restores only into the dataset's own client's space on a
    storage location (`restore_destination_check`); only the operator (`actor=None`: the
    `restore_snapshot` command, drills into the scratch space) restores into a directory. The
    request is the read of client data that the access log records (`data_accessed`, once per
    restore)."""
    dataset = snapshot.dataset
    _restorable(dataset)
    if actor is not None:
        actor.require_level(
            "restore", client_id=dataset.client_id, dataset_id=dataset.pk, action="restore data"
        )
    if is_source_backed(dataset) and not is_drill:
        if path_prefix.strip("/"):
            raise ValidationFailed(
                "A repository or database is restored whole.",
                fields={
                    "path_prefix": "Leave empty: a repository or a database is restored whole."
                },
            )
        destination_path = source_destination_check(
            dataset=dataset,
            location=destination_location,
            path=destination_path,
            force=force,
            operator=actor is None,
        )
    elif force:
        raise ValidationFailed(
            "Only a database restore replaces an existing database.",
            fields={"force": "Only for database restores."},
        )
    elif actor is not None:
        destination_path = restore_destination_check(
            dataset=dataset, location=destination_location, path=destination_path
        )
        if not overwrite and destination_location is not None:
            _destination_empty_check(destination_location, destination_path)
    elif destination_location is None:
        destination_path = _safe_directory(destination_path)
    else:
        destination_path = relative_path_clean(destination_path, field="destination_path")
    if "\x00" in path_prefix or ".." in path_prefix.split("/"):
        raise ValidationFailed(
            "Invalid path prefix.", fields={"path_prefix": "May not contain '..'."}
        )
    restore = RestoreRun.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        snapshot=snapshot,
        destination_location=destination_location,
        destination_path=destination_path,
        path_prefix=path_prefix.strip("/"),
        is_drill=is_drill,
        force=force,
        requested_by=actor.user if actor is not None else None,
    )
    signals.data_accessed.send(
        sender=RestoreRun,
        organization=dataset.organization,
        actor=actor,
        action="restore_drill" if is_drill else "restore",
        dataset=dataset,
        snapshot=snapshot,
        details={
            "restore": str(restore.public_id),
            "destination_location": (
                str(destination_location.public_id) if destination_location else None
            ),
            "destination_path": restore.destination_path,
            "path_prefix": restore.path_prefix,
        },
        origin=origin,
    )
    if enqueue:
        _enqueue_restore(restore)
    return restore


def restore_run_execute(
    restore_public_id: str,
    *,
    final_attempt: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> RestoreRun | None:
    """Carry out a restore, verifying every file's sha256. Idempotent: files are rewritten
    whole, so a redelivered restore simply writes them again."""
    restore = _claim(RestoreRun, restore_public_id)
    if restore is None:
        return RestoreRun.objects.filter(public_id=restore_public_id).first()
    # --- restore drills ---
    if restore.is_drill:
        # A drill is this same restore (into its scratch directory), then verified, timed,
        # recorded and cleaned up by the drills module, which builds on this one.
        from backups.services.drills import drill_execute

        return drill_execute(
            restore,
            lambda: _restore_claimed(restore, final_attempt=final_attempt, on_progress=on_progress),
        )
    return _restore_claimed(restore, final_attempt=final_attempt, on_progress=on_progress)


def _restore_claimed(
    restore: RestoreRun,
    *,
    final_attempt: bool,
    on_progress: Callable[[int, int], None] | None,
) -> RestoreRun:
    """The restore itself, once claimed: see restore_run_execute."""
    snapshot = Snapshot.objects.select_related("location").get(pk=restore.snapshot_id)
    dataset = restore.dataset
    if is_source_backed(dataset) and not restore.is_drill:
        return source_restore_execute(
            restore, snapshot, final_attempt=final_attempt, on_progress=on_progress
        )
    try:
        data_key = dataset_data_key(dataset)
        store = store_for_location(snapshot.location)
        if restore.destination_location_id is None:
            local = LocalObjectStore(restore.destination_path, create=True)
            if restore.attempts > 1:
                # The worker of an earlier attempt died mid-write (the crash matrix): its
                # half-written temporary files would stay in the restored tree for good.
                local.discard_temporary_files()
            destination: ObjectStore = local
            prefix = ""
        else:
            location = StorageLocation.objects.get(pk=restore.destination_location_id)
            destination = store_for_location(location, create=True)
            prefix = location_key(location, restore.destination_path)
            if restore.attempts > 1 and isinstance(destination, LocalObjectStore):
                # As above, but only in this restore's own folder: the location is shared
                # with other writers (backups, other restores) whose files are not ours.
                destination.discard_temporary_files(prefix.rstrip("/") + "/")
        base = repository_base(snapshot.location, dataset)
        _retrieve_archived(restore, store, base, data_key, snapshot.manifest_id)
        result = _with_progress(
            lambda progress: engine.restore(
                store,
                base,
                data_key,
                snapshot.manifest_id,
                destination,
                prefix,
                path_prefix=restore.path_prefix,
                progress=progress,
            ),
            RestoreRun,
            restore.pk,
            on_progress,
        )
    except RUN_ERRORS as exc:
        return _failed(RestoreRun, restore.pk, exc, final_attempt=final_attempt)  # type: ignore[no-any-return]
    if not result.files_restored and restore.path_prefix:
        _finish_failed(
            RestoreRun,
            restore.pk,
            f"No file of this snapshot lies under '{restore.path_prefix}'; nothing was restored.",
        )
        return RestoreRun.objects.get(pk=restore.pk)
    now = timezone.now()
    with transaction.atomic():
        RestoreRun.objects.filter(pk=restore.pk).update(
            # A drill stays running until the drills module has checked, timed and recorded it.
            status=RunStatus.RUNNING if restore.is_drill else RunStatus.SUCCEEDED,
            finished_at=now,
            error="",
            files=result.files_restored,
            bytes=result.bytes_restored,
            bytes_done=result.bytes_restored,
            bytes_total=result.bytes_restored,
        )
        if not restore.is_drill:  # a drill records its scratch itself, with its removal
            restored_copy_record(restore, files=result.files_restored, at=now)
    return RestoreRun.objects.get(pk=restore.pk)


def _retrieval_reporter(restore: RestoreRun) -> ArchiveProgress:
    """Write the retrieval's progress on the run, as its heartbeat too."""

    def report(message: str) -> None:
        _beat(RestoreRun, restore.pk, {"retrieval_status": message[:255]})

    return report


def _retrieve_archived(
    restore: RestoreRun, store: ObjectStore, base: str, data_key: bytes, manifest_id: str
) -> None:
    """Retrieve the archived content this restore reads, first; the wait is recorded apart
    (a drill compares restore plus retrieval with the RTO)."""
    seconds = archive_retrieve_for_read(
        store=store,
        base=base,
        data_key=data_key,
        manifest_ids=[manifest_id],
        path_prefix=restore.path_prefix,
        progress=_retrieval_reporter(restore),
    )
    if seconds:
        RestoreRun.objects.filter(pk=restore.pk).update(
            retrieval_duration=timedelta(seconds=seconds),
            retrieval_status=retrieval_done_message(seconds),
        )


def restored_copy_record(
    restore: RestoreRun,
    *,
    files: int,
    at: datetime,
    removed: str = "",
    kind: CopyKind | None = None,
) -> DataCopy:
    """The copy a finished restore wrote, tracked so a deletion of the dataset reaches it and
    its certificate names it; `removed` says how it is already gone (a drill's scratch); `kind`
    what a repository or database restore made (a database, a push). Once per restore: a
    redelivered restore rewrites the same files."""
    kind = kind or (
        CopyKind.DRILL
        if restore.is_drill
        else CopyKind.RESTORE
        if restore.destination_location_id
        else CopyKind.DIRECTORY
    )
    copy, _ = DataCopy.objects.update_or_create(
        restore=restore,
        defaults={
            "organization_id": restore.organization_id,
            "dataset_id": restore.dataset_id,
            "snapshot_id": restore.snapshot_id,
            "kind": kind,
            "location_id": restore.destination_location_id,
            "path": restore.destination_path,
            "files": files,
            "bytes": RestoreRun.objects.filter(pk=restore.pk).values_list("bytes", flat=True)[0],
            "made_by_id": restore.requested_by_id,
            "made_at": at,
            "removed_at": at if removed else None,
            "removal": removed,
        },
    )
    return copy


def snapshot_verify(
    snapshot: Snapshot,
    *,
    read_data_subset: float = 1.0,
    progress: ArchiveProgress | None = None,
) -> engine.VerifyReport:
    """Re-read and authenticate a snapshot's chunks (all, or a random fraction). Reading any
    of them retrieves the snapshot's archived content first (`progress` hears the wait); a
    check of the listing alone (fraction 0) reads nothing and retrieves nothing."""
    if not 0.0 <= read_data_subset <= 1.0:
        raise ValidationFailed("The subset is a fraction between 0 and 1.")
    store = store_for_location(snapshot.location)
    base = repository_base(snapshot.location, snapshot.dataset)
    data_key = dataset_data_key(snapshot.dataset)
    if read_data_subset > 0:
        # The sample is drawn inside the engine, among every blob: retrieve them all.
        archive_retrieve_for_read(
            store=store,
            base=base,
            data_key=data_key,
            manifest_ids=[snapshot.manifest_id],
            progress=progress,
        )
    return engine.verify(
        store, base, data_key, snapshot.manifest_id, read_data_subset=read_data_subset
    )
