"""Backup policies: the built-in defaults by dataset kind, assignment, and schedules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time, timedelta
from typing import Any

from django.db import transaction

from backups.engine import generate_data_key, unwrap_data_key, wrap_data_key
from backups.models import (
    DEFAULT_DRILL_EVERY,
    UNLIMITED,
    BackupPolicy,
    DatasetProtection,
    DefaultFor,
    Frequency,
    PolicyTarget,
    Snapshot,
    StorageClass,
)
from backups.services.policy_targets import TargetRetention, classes_check, targets_set
from backups.services.policy_targets import covers_repositories as covers_repositories
from backups.services.schedules import next_due as next_due
from backups.services.schedules import policy_targets_for as policy_targets_for
from backups.services.schedules import schedules_sync as schedules_sync
from clients.models import Dataset, DatasetKind, LifecycleState, Organization, StorageLocation
from kernel.changes import UNCHANGED, Unchanged
from kernel.crypto import master_key
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import Actor

# The agency backup guidance the product follows, as data.
DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    DefaultFor.CONTINUOUS: {
        "name": "Continuous — code and live pipeline inputs",
        "frequency": Frequency.CONTINUOUS,
        "keep_last": 8,
        "keep_hourly": 48,
        "keep_daily": 30,
        "keep_monthly": 12,
    },
    DefaultFor.RECORDS: {
        "name": "Continuous — business records (monthly kept forever)",
        "frequency": Frequency.CONTINUOUS,
        "keep_last": 8,
        "keep_hourly": 48,
        "keep_daily": 30,
        "keep_monthly": UNLIMITED,
    },
    DefaultFor.DAILY: {
        "name": "Daily — active client data",
        "frequency": Frequency.DAILY,
        "keep_daily": 30,
        "keep_monthly": 12,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
    DefaultFor.WEEKLY: {
        "name": "Weekly — completed models and infrastructure config",
        "frequency": Frequency.WEEKLY,
        "keep_weekly": 12,
        "keep_monthly": 12,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
    DefaultFor.MONTHLY: {
        "name": "Monthly — archived data",
        "frequency": Frequency.MONTHLY,
        "keep_monthly": 24,
        "keep_yearly": 7,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
}


def policies_create_defaults(organization: Organization) -> list[BackupPolicy]:
    """Create the organization's built-in policies; idempotent."""
    created = []
    for key, fields in DEFAULT_POLICIES.items():
        policy, _ = BackupPolicy.objects.get_or_create(
            organization=organization, default_for=key, defaults=dict(fields)
        )
        created.append(policy)
    return created


def default_policy_key(dataset: Dataset, *, live_pipeline_input: bool) -> str:
    """The guidance: archived → monthly; code and live inputs → continuous; records →
    continuous with monthly kept forever; completed models and infra config → weekly;
    everything else → daily."""
    if dataset.lifecycle_state == LifecycleState.ARCHIVED:
        return DefaultFor.MONTHLY
    if dataset.kind == DatasetKind.CODE_REPOSITORY or live_pipeline_input:
        return DefaultFor.CONTINUOUS
    if dataset.kind == DatasetKind.BUSINESS_RECORDS:
        return DefaultFor.RECORDS
    if dataset.kind == DatasetKind.INFRASTRUCTURE_CONFIG or (
        dataset.kind == DatasetKind.MODEL_ARTIFACT
        and dataset.lifecycle_state == LifecycleState.COMPLETED
    ):
        return DefaultFor.WEEKLY
    return DefaultFor.DAILY


def _key_context(dataset: Dataset) -> bytes:
    # Binds a wrapped key to its dataset: a key object copied to another repository won't open.
    return b"dataset:" + dataset.public_id.bytes


class ProtectionMissing(Conflict):
    """A dataset without its protection row: every dataset gets one when it is registered
    (`protection_create`, on `dataset_registered`; migration 0008 made those of older ones), so
    this is a dataset made some other way. Nothing makes one later: a read never writes."""

    code = "protection_missing"


def protection_create(dataset: Dataset) -> DatasetProtection:
    """When a dataset is registered (the `dataset_registered` receiver): its protection row,
    with the default policy for its kind and state, a fresh data key and schedules for the
    policy's targets. Returns the existing row if there is one: a signal sent twice makes one
    key."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    if protection is not None:
        return protection
    policies_create_defaults(dataset.organization)
    policy = BackupPolicy.objects.get(
        organization=dataset.organization,
        default_for=default_policy_key(dataset, live_pipeline_input=False),
    )
    protection = DatasetProtection.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        policy=policy,
        wrapped_key=wrap_data_key(master_key(), generate_data_key(), context=_key_context(dataset)),
    )
    schedules_sync(dataset, protection)
    return protection


def protection_get(dataset: Dataset) -> DatasetProtection:
    """The dataset's protection, read only; ProtectionMissing (409) when it has none."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    if protection is None:
        raise ProtectionMissing(
            f"The dataset {dataset.name} has no backup protection: it was not registered "
            "through the inventory."
        )
    return protection


def dataset_data_key(dataset: Dataset) -> bytes:
    """The dataset's plain data key, for the engine only. Never log it."""
    protection = protection_get(dataset)
    if not protection.wrapped_key:
        raise ValidationFailed("The dataset's key was destroyed; its backups are unreadable.")
    return unwrap_data_key(
        master_key(), bytes(protection.wrapped_key), context=_key_context(dataset)
    )


def dataset_key_context(dataset: Dataset) -> bytes:
    return _key_context(dataset)


@transaction.atomic
def dataset_policy_set(
    *,
    actor: Actor,
    dataset: Dataset,
    policy: BackupPolicy | None,
    live_pipeline_input: bool | None = None,
) -> DatasetProtection:
    """Pick a dataset's policy (None: back to the default for its kind and state). A dataset
    being deleted, or deleted, keeps what it has (409): it is backed up no more."""
    actor.require_level(
        "manage", client_id=dataset.client_id, dataset_id=dataset.pk, action="change backup policy"
    )
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(
            f"The dataset is {dataset.get_lifecycle_state_display().lower()}: its backup policy "
            "no longer changes."
        )
    protection = DatasetProtection.objects.select_for_update().get(pk=protection_get(dataset).pk)
    if live_pipeline_input is not None:
        protection.live_pipeline_input = live_pipeline_input
    if policy is None:
        protection.policy_pinned = False
        protection.policy = BackupPolicy.objects.get(
            organization=dataset.organization,
            default_for=default_policy_key(
                dataset, live_pipeline_input=protection.live_pipeline_input
            ),
        )
    else:
        protection.policy_pinned = True
        protection.policy = policy
    protection.save(update_fields=["policy", "policy_pinned", "live_pipeline_input"])
    schedules_sync(dataset, protection)
    return protection


def protection_follow_state(dataset: Dataset) -> None:
    """After a lifecycle change, an unpinned dataset moves to its state's default policy."""
    protection = protection_get(dataset)
    if protection.policy_pinned:
        return
    key = default_policy_key(dataset, live_pipeline_input=protection.live_pipeline_input)
    policy = BackupPolicy.objects.get(organization=dataset.organization, default_for=key)
    if policy.pk != protection.policy_id:
        protection.policy = policy
        protection.save(update_fields=["policy"])
        schedules_sync(dataset, protection)


# --- policies ---


def holds_repositories(location: StorageLocation) -> bool:
    """Whether backup repositories are, or will be, kept on the location."""
    return (
        PolicyTarget.objects.filter(location=location).exists()
        or Snapshot.objects.filter(location=location).exists()
    )


def primary_path_guard(*, location: StorageLocation, path: str) -> None:
    """`clients.signals.dataset_path_checking`: a primary copy never contains backup
    repositories (a backup would read its own repository, a deletion of the dataset would delete
    every other dataset's backups). The whole of a location that holds them is refused."""
    if not path and holds_repositories(location):
        raise ValidationFailed(
            f"{location.name} holds AgencyOps' backup repositories; a dataset cannot be all of it.",
            fields={"path": "Give a folder: the whole location holds backup repositories."},
        )


@transaction.atomic
def policy_create(
    *,
    actor: Actor,
    name: str,
    frequency: str,
    time_of_day: time = time(2, 0),
    keep_last: int = 0,
    keep_hourly: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    keep_yearly: int = 0,
    keep_forever: bool = False,
    storage_class: str = StorageClass.STANDARD,
    infrequent_access_after_days: int | None = None,
    archive_after_days: int | None = None,
    drill_every: timedelta | None = DEFAULT_DRILL_EVERY,
    compression_level: int = 3,
    targets: Sequence[StorageLocation] = (),
    target_retention: Sequence[TargetRetention] = (),
) -> BackupPolicy:
    """An admin's own policy; the defaults are the model's. Targets are checked as in
    `policy_update` (never a location that is a dataset's whole primary copy)."""
    actor.require_admin("manage backup policies")
    policy = BackupPolicy(
        organization=actor.organization,
        name=name,
        frequency=frequency,
        time_of_day=time_of_day,
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        keep_forever=keep_forever,
        storage_class=storage_class,
        infrequent_access_after_days=infrequent_access_after_days,
        archive_after_days=archive_after_days,
        drill_every=drill_every,
        compression_level=compression_level,
    )
    policy.full_clean()
    policy.save()
    targets_set(policy, targets, target_retention)
    return policy


@transaction.atomic
def policy_update(
    *,
    actor: Actor,
    policy: BackupPolicy,
    targets: Sequence[StorageLocation] | None = None,
    target_retention: Sequence[TargetRetention] | None = None,
    name: str | Unchanged = UNCHANGED,
    frequency: str | Unchanged = UNCHANGED,
    time_of_day: time | Unchanged = UNCHANGED,
    keep_last: int | Unchanged = UNCHANGED,
    keep_hourly: int | Unchanged = UNCHANGED,
    keep_daily: int | Unchanged = UNCHANGED,
    keep_weekly: int | Unchanged = UNCHANGED,
    keep_monthly: int | Unchanged = UNCHANGED,
    keep_yearly: int | Unchanged = UNCHANGED,
    keep_forever: bool | Unchanged = UNCHANGED,
    storage_class: str | Unchanged = UNCHANGED,
    infrequent_access_after_days: int | Unchanged | None = UNCHANGED,
    archive_after_days: int | Unchanged | None = UNCHANGED,
    drill_every: timedelta | Unchanged | None = UNCHANGED,
    compression_level: int | Unchanged = UNCHANGED,
) -> BackupPolicy:
    """Change the fields given (the others keep their value) and, with `targets`, replace the
    ordered targets. A new schedule (frequency, time) moves the next run of every dataset on
    the policy. `target_retention` replaces the Object Lock retention of the targets."""
    actor.require_admin("manage backup policies")
    changes: dict[str, object] = {
        "name": name,
        "frequency": frequency,
        "time_of_day": time_of_day,
        "keep_last": keep_last,
        "keep_hourly": keep_hourly,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "keep_yearly": keep_yearly,
        "keep_forever": keep_forever,
        "storage_class": storage_class,
        "infrequent_access_after_days": infrequent_access_after_days,
        "archive_after_days": archive_after_days,
        "drill_every": drill_every,
        "compression_level": compression_level,
    }
    for field, value in changes.items():
        if value is not UNCHANGED:
            setattr(policy, field, value)
    policy.full_clean()
    policy.save()
    if targets is not None or target_retention is not None:
        targets_set(policy, targets, target_retention)
        return policy
    if storage_class is not UNCHANGED:
        current = policy.policy_targets.select_related("location")
        classes_check(policy, [t.location for t in current])
    if frequency is not UNCHANGED or time_of_day is not UNCHANGED:
        for protection in DatasetProtection.objects.filter(policy=policy).select_related("dataset"):
            schedules_sync(protection.dataset, protection, reschedule=True)
    return policy
