"""A policy's ordered targets, and the Object Lock retention each may ask for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backups.models import (
    MAX_LOCK_DAYS,
    BackupPolicy,
    DatasetProtection,
    LockMode,
    PolicyTarget,
)
from backups.services.schedules import schedules_sync
from backups.services.storage_classes import provider_classes, provider_has_class
from clients.models import Dataset, LifecycleState, LocationKind, StorageLocation
from kernel.exceptions import ValidationFailed


@dataclass(frozen=True, slots=True)
class TargetRetention:
    """Object Lock retention on one target: every object written there is kept `days` days in
    `mode` (GOVERNANCE or COMPLIANCE), extended while a newer snapshot needs it."""

    location: StorageLocation
    mode: str
    days: int


def covers_repositories(dataset: Dataset, location: StorageLocation) -> bool:
    """Whether the dataset's primary copy would contain the organization's backup repositories
    on this location (its whole location, or a path into the repositories' folder)."""
    if dataset.location_id != location.pk:
        return False
    path = dataset.path.strip("/")
    folder = str(location.organization.public_id)
    return not path or path == folder or path.startswith(folder + "/")


def _retention_checked(
    targets: Sequence[StorageLocation], retention: Sequence[TargetRetention]
) -> dict[int, TargetRetention]:
    wanted: dict[int, TargetRetention] = {}
    target_ids = {t.pk for t in targets}
    for number, entry in enumerate(retention):
        field = f"target_retention.{number}"
        if entry.location.pk not in target_ids:
            raise ValidationFailed(
                f"{entry.location.name} is not one of the policy's targets.",
                fields={f"{field}.location": "List the location among the targets first."},
            )
        if entry.location.kind != LocationKind.S3:
            raise ValidationFailed(
                f"{entry.location.name} is a local directory: it has no Object Lock.",
                fields={f"{field}.location": "Object Lock needs an S3 bucket."},
            )
        if entry.mode not in LockMode.values:
            raise ValidationFailed(
                "Unknown Object Lock mode.",
                fields={f"{field}.mode": "GOVERNANCE or COMPLIANCE."},
            )
        if not 1 <= entry.days <= MAX_LOCK_DAYS:
            raise ValidationFailed(
                "Retention is counted in days.",
                fields={f"{field}.days": f"Between 1 and {MAX_LOCK_DAYS}."},
            )
        if entry.location.pk in wanted:
            raise ValidationFailed(
                f"{entry.location.name} is listed twice.",
                fields={f"{field}.location": "Listed twice."},
            )
        wanted[entry.location.pk] = entry
    return wanted


def classes_check(policy: BackupPolicy, targets: Sequence[StorageLocation]) -> None:
    """Every S3 target's provider has the class the policy writes file content in: a class a
    provider lacks would fail every upload."""
    for location in targets:
        if location.kind != LocationKind.S3:
            continue  # a directory has no classes: the class is ignored there
        if not provider_has_class(location.provider, policy.storage_class):
            raise ValidationFailed(
                f"{location.name} ({location.get_provider_display()}) has no "
                f"{policy.storage_class} storage class.",
                fields={
                    "storage_class": f"{location.get_provider_display()} offers "
                    + ", ".join(sorted(provider_classes(location.provider)))
                    + "."
                },
            )


def targets_set(
    policy: BackupPolicy,
    targets: Sequence[StorageLocation] | None,
    retention: Sequence[TargetRetention] | None = None,
) -> None:
    """Replace the ordered targets (None: keep them) and, with `retention`, the Object Lock
    retention of each (targets not listed there ask for none). A kept target keeps the
    retention it had unless `retention` is given."""
    current = list(policy.policy_targets.select_related("location").order_by("position", "id"))
    if targets is None:
        targets = [t.location for t in current]
    if len({t.pk for t in targets}) != len(targets):
        raise ValidationFailed("A target is listed twice.", fields={"targets": "Listed twice."})
    for location in targets:
        if not location.is_store:
            raise ValidationFailed(
                f"{location.name} is a {location.get_kind_display()}: backups go to buckets and "
                "directories.",
                fields={"targets": f"{location.name} cannot hold backups."},
            )
    classes_check(policy, targets)
    for location in targets:
        covering = [
            d
            for d in Dataset.objects.filter(location=location).exclude(
                lifecycle_state=LifecycleState.DELETED
            )
            if covers_repositories(d, location)
        ]
        if covering:
            raise ValidationFailed(
                f"{location.name} is the whole primary copy of {covering[0].name}; its backups "
                "cannot live inside it.",
                fields={"targets": f"{location.name} holds a dataset's whole primary copy."},
            )
    if retention is None:
        kept = {t.location_id: t for t in current if t.locked}
        wanted = {
            pk: TargetRetention(t.location, t.object_lock_mode, t.object_lock_days or 1)
            for pk, t in kept.items()
        }
    else:
        wanted = _retention_checked(targets, retention)
    PolicyTarget.objects.filter(policy=policy).delete()
    PolicyTarget.objects.bulk_create(
        PolicyTarget(
            policy=policy,
            location=location,
            position=index,
            object_lock_mode=wanted[location.pk].mode if location.pk in wanted else "",
            object_lock_days=wanted[location.pk].days if location.pk in wanted else None,
        )
        for index, location in enumerate(targets)
    )
    for protection in DatasetProtection.objects.filter(policy=policy).select_related("dataset"):
        schedules_sync(protection.dataset, protection)
