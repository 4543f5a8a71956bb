"""What a deletion asks of the backup app: stop new copies, destroy the data keys, and record the
copies it deleted. lifecycle calls these; it never writes the backup app's tables itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from backups.models import BackupSchedule, CopyKind, DataCopy, DatasetProtection, Snapshot
from clients.models import Dataset


def schedules_stop(*, datasets: Sequence[Dataset]) -> None:
    """No new copy of these datasets is scheduled: their schedule rows go. Once a dataset is in a
    deletion state nothing brings them back (schedules_sync gives such a dataset none)."""
    BackupSchedule.objects.filter(dataset_id__in=[d.pk for d in datasets]).delete()


@transaction.atomic
def dataset_keys_destroy(*, datasets: Sequence[Dataset], now: datetime) -> None:
    """Crypto-shred: the wrapped data keys of these datasets are emptied, so whatever storage
    keeps for a while (object lock, archive tiers) is unreadable from now on. Saved row by row,
    so the audit trail records when each key went (the key itself is never logged)."""
    protections = DatasetProtection.objects.select_for_update().filter(
        dataset_id__in=[d.pk for d in datasets], wrapped_key__isnull=False
    )
    for protection in protections.order_by("pk"):
        protection.wrapped_key = None
        # The key that wraps the data key's copy on locked targets goes with it.
        protection.lock_wrapping_key = None
        protection.key_destroyed_at = now
        protection.save(update_fields=["wrapped_key", "lock_wrapping_key", "key_destroyed_at"])


def copies_forget(*, datasets: Sequence[Dataset], removal: str, now: datetime) -> None:
    """A deletion removed every copy of these datasets and verified it: their snapshots are
    forgotten, and the folders restores wrote are recorded removed, `removal` saying how."""
    pks = [d.pk for d in datasets]
    Snapshot.objects.filter(dataset_id__in=pks, forgotten_at__isnull=True).update(forgotten_at=now)
    DataCopy.objects.filter(
        dataset_id__in=pks,
        kind__in=[CopyKind.RESTORE, CopyKind.DATABASE],
        removed_at__isnull=True,
    ).update(removed_at=now, removal=removal)
