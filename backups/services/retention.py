"""Retention: keep what the policy names, forget the rest, collect unreferenced chunks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from backups import engine
from backups.models import UNLIMITED, BackupPolicy, DatasetProtection, RunTarget, Snapshot
from backups.services.policies import dataset_data_key, protection_get
from backups.services.repository_locks import prune_lock_acquire, prune_lock_release
from backups.services.stores import repository_base, target_store
from backups.storage import ObjectStore, StorageError
from clients.models import Dataset, LifecycleState, StorageLocation

logger = logging.getLogger(__name__)

# restic's "unlimited": more buckets than any repository will ever hold.
_UNLIMITED_COUNT = 10**9


@dataclass
class PruneReport:
    dataset: str
    target: str
    kept: int = 0
    forgotten: int = 0
    chunks_deleted: int = 0
    bytes_deleted: int = 0
    skipped: str = ""
    errors: list[str] = field(default_factory=list)


def retention_policy_for(policy: BackupPolicy) -> engine.RetentionPolicy | None:
    """The engine's policy, or None when nothing may be pruned (keep forever or no rule)."""
    if policy.keep_forever:
        return None

    def count(value: int) -> int:
        return _UNLIMITED_COUNT if value == UNLIMITED else value

    rules = engine.RetentionPolicy(
        keep_last=count(policy.keep_last),
        keep_hourly=count(policy.keep_hourly),
        keep_daily=count(policy.keep_daily),
        keep_weekly=count(policy.keep_weekly),
        keep_monthly=count(policy.keep_monthly),
        keep_yearly=count(policy.keep_yearly),
    )
    return None if rules.is_empty else rules


def pruning_suspend(*, datasets: Sequence[Dataset], suspended: bool) -> None:
    """Stop (a legal hold placed) or resume (released) pruning of these datasets' snapshots.
    Every dataset has its protection from registration; a missing one is an error here, not a
    dataset silently left prunable."""
    for dataset in datasets:
        protection_get(dataset)
    DatasetProtection.objects.filter(dataset__in=list(datasets)).update(pruning_suspended=suspended)


def dataset_prune(dataset: Dataset, location: StorageLocation) -> PruneReport:
    """Forget the snapshots the policy does not keep on one target, then collect chunks no
    remaining snapshot references. Never while a legal hold suspends pruning, never while a
    backup of the same pair is running (its fresh chunks are not referenced yet)."""
    report = PruneReport(dataset=str(dataset.public_id), target=location.name)
    protection: DatasetProtection = protection_get(dataset)
    if protection.pruning_suspended:
        report.skipped = "legal hold: pruning suspended"
        return report
    if protection.policy is None or dataset.lifecycle_state in (
        LifecycleState.DELETION_PENDING,
        LifecycleState.DELETED,
    ):
        report.skipped = "no policy or dataset leaving"
        return report
    rules = retention_policy_for(protection.policy)
    if rules is None:
        report.skipped = "policy keeps every snapshot"
        return report
    # Repacking writes: the target's retention and classes apply as in a backup.
    store = target_store(location, dataset)
    base = repository_base(location, dataset)
    try:
        # Announce the prune first, then look for a backup (see repository_locks).
        lock = prune_lock_acquire(store, base)
    except StorageError as exc:
        report.errors.append(str(exc))
        return report
    try:
        if RunTarget.objects.filter(dataset=dataset, location=location, active=True).exists():
            report.skipped = "a backup of this target is running"
            return report
        _prune_unlocked(dataset, location, store, base, rules, report)
    finally:
        try:
            prune_lock_release(store, base, lock)
        except StorageError as exc:  # a stale lock expires on its own
            logger.warning("prune lock %s not released: %s", lock, exc)
    return report


def _prune_unlocked(
    dataset: Dataset,
    location: StorageLocation,
    store: ObjectStore,
    base: str,
    rules: engine.RetentionPolicy,
    report: PruneReport,
) -> None:

    def record_forgotten(decision: engine.RetentionDecision) -> None:
        # Before the manifests go: a worker killed after storage deleted them must not leave
        # rows that still claim complete snapshots. A forgotten row whose manifest survived (a
        # crash here, a refused delete) is harmless: the next prune deletes that manifest.
        Snapshot.objects.filter(
            dataset=dataset,
            location=location,
            manifest_id__in=[ref.id for ref in decision.remove],
            forgotten_at__isnull=True,
        ).update(forgotten_at=timezone.now())

    try:
        decision, deleted = engine.forget(store, base, rules, before_delete=record_forgotten)
        forgotten = {ref.id for ref in decision.remove}
        failed = {error.key.rsplit("/", 1)[-1] for error in deleted.errors}
        report.kept, report.forgotten = len(decision.keep), len(forgotten - failed)
        report.errors.extend(f"{e.key}: {e.message}" for e in deleted.errors)
        collected = engine.garbage_collect(store, base, dataset_data_key(dataset))
        report.chunks_deleted = collected.chunks_deleted
        report.bytes_deleted = collected.bytes_deleted
    except (StorageError, engine.EngineError) as exc:
        report.errors.append(str(exc))
        logger.warning("prune of %s on %s failed: %s", dataset.public_id, location.name, exc)


def retention_sweep() -> list[PruneReport]:
    """Daily: prune every (dataset, target) pair that holds snapshots."""
    pairs = (
        Snapshot.objects.unscoped_for_system_task()
        .filter(forgotten_at__isnull=True)
        .values_list("dataset_id", "location_id")
        .distinct()
    )
    reports = []
    for dataset_id, location_id in pairs:
        dataset = Dataset.objects.select_related("organization", "client", "location").get(
            pk=dataset_id
        )
        reports.append(dataset_prune(dataset, StorageLocation.objects.get(pk=location_id)))
    return reports
