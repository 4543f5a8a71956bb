"""Backup schedules: one row per dataset and policy target, and when each is next due."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from backups.models import BackupPolicy, BackupSchedule, DatasetProtection, Frequency
from clients.models import Dataset, LifecycleState

DELETION_STATES = (LifecycleState.DELETION_PENDING, LifecycleState.DELETED)


def policy_targets_for(policy: BackupPolicy, dataset: Dataset) -> Any:
    """The policy's targets that may hold this dataset's backups: shared locations, and those
    dedicated to the dataset's own client — never a location dedicated to another client (its
    bucket, perhaps in that client's own account, is that client's space)."""
    return policy.policy_targets.filter(
        Q(location__client__isnull=True) | Q(location__client_id=dataset.client_id)
    ).select_related("location")


def _at(day: datetime, moment: time) -> datetime:
    return day.replace(hour=moment.hour, minute=moment.minute, second=0, microsecond=0)


def next_due(policy: BackupPolicy, after: datetime) -> datetime:
    """The first slot strictly after `after` (UTC) for the policy's frequency."""
    after = after.astimezone(UTC)
    if policy.frequency == Frequency.CONTINUOUS:
        return after + timedelta(minutes=15)
    if policy.frequency == Frequency.HOURLY:
        return after.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    candidate = _at(after, policy.time_of_day)
    if policy.frequency == Frequency.DAILY:
        return candidate if candidate > after else candidate + timedelta(days=1)
    if policy.frequency == Frequency.WEEKLY:
        # Mondays: weekly copies land at the start of the working week.
        candidate -= timedelta(days=candidate.weekday())
        return candidate if candidate > after else candidate + timedelta(days=7)
    first = candidate.replace(day=1)
    if first > after:
        return first
    days = calendar.monthrange(first.year, first.month)[1]
    return first + timedelta(days=days)


def schedules_sync(
    dataset: Dataset, protection: DatasetProtection, *, reschedule: bool = False
) -> None:
    """One schedule row per policy target; a new target is due at once (first copy now). A
    dataset being deleted (or deleted) has none, whoever asks: a policy edit mid-deletion must
    not bring back the schedules the deletion stopped."""
    now = timezone.now()
    wanted: Iterable[int] = (
        policy_targets_for(protection.policy, dataset).values_list("location_id", flat=True)
        if protection.policy is not None and dataset.lifecycle_state not in DELETION_STATES
        else []
    )
    wanted_ids = set(wanted)
    existing = {s.location_id: s for s in BackupSchedule.objects.filter(dataset=dataset)}
    BackupSchedule.objects.filter(dataset=dataset).exclude(location_id__in=wanted_ids).delete()
    for location_id in wanted_ids - set(existing):
        BackupSchedule.objects.create(
            organization=dataset.organization,
            dataset=dataset,
            location_id=location_id,
            next_due_at=now,
        )
    if reschedule and protection.policy is not None:
        for location_id in wanted_ids & set(existing):
            schedule = existing[location_id]
            schedule.next_due_at = next_due(protection.policy, schedule.last_success_at or now)
            schedule.save(update_fields=["next_due_at"])
