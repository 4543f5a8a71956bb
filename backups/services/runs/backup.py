"""Backup runs: request, execute (idempotent, resumable) and record snapshots; the
every-minute dispatch of due schedules."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups import engine
from backups.engine.manifest import manifest_time
from backups.models import (
    BackupRun,
    BackupSchedule,
    RunStatus,
    RunTarget,
    Snapshot,
    Trigger,
)
from backups.services.exports import inbox_clear
from backups.services.object_lock import repository_key_store, retention_extend
from backups.services.policies import (
    covers_repositories,
    dataset_data_key,
    next_due,
    policy_targets_for,
    protection_get,
)
from backups.services.repository_locks import prune_lock_check
from backups.services.runs.work import (
    RUN_ERRORS,
    _claim,
    _enqueue_backup,
    _failed,
    _with_progress,
)
from backups.services.sources import Staged, mirror_cache_record, source_opened
from backups.services.stores import (
    repository_base,
    target_store,
)
from backups.storage import ObjectStore, StorageError
from clients.models import Dataset, LifecycleState, StorageLocation
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)


# --- requesting ---


def _backupable(dataset: Dataset) -> None:
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(f"The dataset is {dataset.get_lifecycle_state_display().lower()}.")


def _policy_targets(dataset: Dataset) -> list[StorageLocation]:
    protection = protection_get(dataset)
    if protection.policy is None:
        return []
    return [t.location for t in policy_targets_for(protection.policy, dataset)]


@transaction.atomic
def backup_run_create(
    *,
    dataset: Dataset,
    trigger: str,
    targets: Sequence[StorageLocation],
    requested_by: Any = None,
    enqueue: bool = True,
) -> BackupRun:
    """Create a pending run for these targets. The database refuses a second active run of the
    same (dataset, target) pair, which becomes a 409."""
    _backupable(dataset)
    for location in targets:
        if location.client_id not in (None, dataset.client_id):
            raise ValidationFailed(
                f"{location.name} is dedicated to another client; it holds no other client's "
                "backups.",
                fields={"target": "A location dedicated to another client."},
            )
        if covers_repositories(dataset, location):
            raise ValidationFailed(
                f"The dataset's primary copy contains the backup repositories on {location.name}.",
                fields={"path": "Give the dataset a folder of its own on the location."},
            )
    if not targets:
        raise ValidationFailed(
            "The dataset's backup policy has no targets; an admin must add one.",
            fields={"policy": "The policy has no backup targets."},
        )
    run = BackupRun.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        trigger=trigger,
        requested_by=requested_by,
    )
    try:
        with transaction.atomic():
            RunTarget.objects.bulk_create(
                RunTarget(run=run, dataset=dataset, location=location, position=index)
                for index, location in enumerate(targets)
            )
    except IntegrityError:
        raise Conflict(
            "A backup of this dataset to the same target is already pending or running."
        ) from None
    if enqueue:
        _enqueue_backup(run)
    return run


def backup_run_request(
    *, actor: Actor, dataset: Dataset, trigger: str = Trigger.API, enqueue: bool = True
) -> BackupRun:
    """Back a dataset up now to every target of its policy. Needs `manage` (or admin)."""
    actor.require_level(
        "manage", client_id=dataset.client_id, dataset_id=dataset.pk, action="start backups"
    )
    return backup_run_create(
        dataset=dataset,
        trigger=trigger,
        targets=_policy_targets(dataset),
        requested_by=actor.user,
        enqueue=enqueue,
    )


# --- executing ---


def _parent_manifest(
    dataset: Dataset,
    targets: Sequence[StorageLocation],
    repos: Sequence[tuple[ObjectStore, str]],
    indexes: Sequence[engine.PackIndex],
    data_key: bytes,
) -> engine.Manifest | None:
    """The newest snapshot on one of these targets, so unchanged files are not read again."""
    latest = (
        Snapshot.objects.filter(dataset=dataset, location__in=targets, forgotten_at__isnull=True)
        .select_related("location")
        .first()
    )
    if latest is None:
        return None
    at = next(i for i, location in enumerate(targets) if location.pk == latest.location_id)
    store, base = repos[at]
    try:
        # Its file list stays in the repository: the backup streams it segment by segment.
        return engine.load_manifest(
            store, base, data_key, latest.manifest_id, index=indexes[at], files=False
        )
    except (StorageError, engine.EngineError):
        logger.warning("parent manifest of %s unreadable; doing a full read", dataset.public_id)
        return None


def _compression_level(dataset: Dataset) -> int:
    policy = protection_get(dataset).policy
    return policy.compression_level if policy is not None else engine.DEFAULT_COMPRESSION_LEVEL


def backup_run_execute(
    run_public_id: str,
    *,
    final_attempt: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> BackupRun | None:
    """Carry out a run. Idempotent: a finished run returns at once; a redelivered run starts
    again and re-uses every chunk already uploaded. Snapshots are recorded only after the
    engine has stored the manifest on every target."""
    run = _claim(BackupRun, run_public_id)
    if run is None:
        return BackupRun.objects.filter(public_id=run_public_id).first()
    dataset = run.dataset
    targets = [rt.location for rt in RunTarget.objects.filter(run=run).select_related("location")]
    try:
        data_key = dataset_data_key(dataset)
        with source_opened(dataset, run_id=str(run.public_id)) as staged:
            result, retained = _backup_from(run, dataset, targets, staged, data_key, on_progress)
    except RUN_ERRORS as exc:
        return _failed(BackupRun, run.pk, exc, final_attempt=final_attempt)  # type: ignore[no-any-return]
    return _record_success(run, targets, result, retained, staged.meta)


def _backup_from(
    run: BackupRun,
    dataset: Dataset,
    targets: Sequence[StorageLocation],
    staged: Staged,
    data_key: bytes,
    on_progress: Callable[[int, int], None] | None,
) -> tuple[engine.BackupResult, dict[int, datetime | None]]:
    """The engine's part of a run: every target's repository ready, then one backup of the
    source to all of them, then their retention extended."""
    source, prefix = staged.store, staged.prefix
    repos: list[tuple[ObjectStore, str]] = []
    for location in targets:
        store = target_store(location, dataset, create=True)
        base = repository_base(location, dataset)
        repository_key_store(store=store, base=base, dataset=dataset, data_key=data_key)
        # Our RunTarget rows are already active; now step back if a prune got here first.
        prune_lock_check(store, base)
        repos.append((store, base))
    # Each target's pack index is read once: for the parent's file list and the backup.
    keys = engine.DatasetKeys.from_data_key(data_key)
    indexes = [engine.load_pack_index(store, base, keys, packs=False) for store, base in repos]
    parent = _parent_manifest(dataset, targets, repos, indexes, data_key)
    # Read here: the engine runs in a thread of its own, outside this task's scope.
    level = _compression_level(dataset)
    result = _with_progress(
        lambda progress: engine.backup(
            source,
            prefix,
            repos,
            data_key,
            parent,
            progress=progress,
            compression_level=level,
            indexes=indexes,
        ),
        BackupRun,
        run.pk,
        on_progress,
    )
    # Before the snapshot is recorded: a snapshot whose retention is not assured fails the
    # run, and the retry (which re-uses every stored pack) extends it again.
    retained = {
        location.pk: retention_extend(
            store=store, base=base, dataset=dataset, location=location, now=timezone.now()
        )
        for location, (store, base) in zip(targets, repos, strict=True)
    }
    return result, retained


@transaction.atomic
def _record_success(
    run: BackupRun,
    targets: Sequence[StorageLocation],
    result: engine.BackupResult,
    retained: dict[int, datetime | None],
    source_meta: dict[str, Any],
) -> BackupRun:
    stats = result.stats
    now = timezone.now()
    taken_at = manifest_time(result.manifest_id)
    for location in targets:
        Snapshot.objects.get_or_create(
            organization=run.organization,
            location=location,
            manifest_id=result.manifest_id,
            defaults={
                "dataset": run.dataset,
                "run": run,
                "taken_at": taken_at,
                "files": result.manifest.file_count,
                "bytes": stats.bytes_seen,
                "new_bytes": stats.bytes_uploaded // max(1, len(targets)),
                "retained_until": retained.get(location.pk),
                "source_meta": source_meta,
            },
        )
    BackupRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        finished_at=now,
        error="",
        files_seen=stats.files_seen,
        bytes_seen=stats.bytes_seen,
        bytes_done=stats.bytes_seen,
        bytes_total=stats.bytes_seen,
        new_bytes=stats.bytes_uploaded,
        files_reused=stats.files_reused,
        skipped_keys=stats.skipped_keys[:1000],
    )
    RunTarget.objects.filter(run=run).update(active=False)
    if source_meta.get("source") == "saas":
        inbox_clear(run.dataset, [e["file"] for e in source_meta.get("exports", [])])
    if source_meta.get("source") == "git":
        newest = Snapshot.objects.filter(
            dataset=run.dataset, manifest_id=result.manifest_id
        ).first()
        if newest is not None:
            mirror_cache_record(run.dataset, newest)
    policy = protection_get(run.dataset).policy
    for schedule in BackupSchedule.objects.filter(dataset=run.dataset, location__in=targets):
        schedule.last_success_at = now
        if policy is not None:
            schedule.next_due_at = max(schedule.next_due_at, next_due(policy, now))
        schedule.save(update_fields=["last_success_at", "next_due_at"])
    # --- alerts: this success resolves the targets' failure incidents (and a missed RPO) ---
    from backups.services.alerts import backup_succeeded_clear

    backup_succeeded_clear(run.dataset, targets, taken_at=taken_at, now=now)
    return BackupRun.objects.get(pk=run.pk)


def due_schedules(now: datetime) -> Any:
    """Every due (dataset, target) pair of every organization, in one query."""
    return (
        BackupSchedule.objects.unscoped_for_system_task()
        .filter(
            next_due_at__lte=now,
            dataset__lifecycle_state__in=[
                LifecycleState.ACTIVE,
                LifecycleState.COMPLETED,
                LifecycleState.ARCHIVED,
            ],
        )
        .exclude(dataset__protection__policy__isnull=True)
        .select_related(
            "dataset", "dataset__organization", "location", "dataset__protection__policy"
        )
        .order_by("next_due_at", "pk")
    )


def backups_dispatch(now: datetime | None = None) -> list[BackupRun]:
    """Beat's every-minute tick: claim each due pair once (conditional update on its due time)
    and enqueue one run for it. A pair whose previous run is still active waits."""
    now = now or timezone.now()
    started = []
    for schedule in due_schedules(now):
        policy = schedule.dataset.protection.policy
        claimed = BackupSchedule.objects.filter(
            pk=schedule.pk, next_due_at=schedule.next_due_at
        ).update(next_due_at=next_due(policy, now))
        if not claimed:
            continue
        try:
            run = backup_run_create(
                dataset=schedule.dataset, trigger=Trigger.SCHEDULE, targets=[schedule.location]
            )
        except Conflict:
            # The previous run of this pair is still going: try again at the next tick.
            BackupSchedule.objects.filter(pk=schedule.pk).update(next_due_at=schedule.next_due_at)
            continue
        started.append(run)
    return started
