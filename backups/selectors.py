"""Tenant reads of the backup app, each starting from `visible_to(actor)`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from agencyops.tenancy import Actor, get_visible_or_404
from backups.models import BackupPolicy, BackupRun, PolicyTarget, RestoreRun, RunTarget, Snapshot
from clients.models import Dataset
from clients.selectors import dataset_list


def policy_list(*, actor: Actor) -> QuerySet[BackupPolicy]:
    targets = PolicyTarget.objects.select_related("location").order_by("position", "id")
    return BackupPolicy.objects.visible_to(actor).prefetch_related(  # type: ignore[no-any-return]
        Prefetch("policy_targets", queryset=targets)
    )


def dataset_list_with_protection(*, actor: Actor) -> QuerySet[Dataset]:
    return dataset_list(actor=actor).select_related("protection", "protection__policy")


def backup_run_list(*, actor: Actor) -> QuerySet[BackupRun]:
    targets = RunTarget.objects.select_related("location").order_by("position", "id")
    return (
        BackupRun.objects.visible_to(actor)
        .select_related("dataset", "requested_by")
        .prefetch_related(
            Prefetch("run_targets", queryset=targets),
            Prefetch(
                "snapshots",
                queryset=Snapshot.objects.select_related("location", "dataset", "run"),
            ),
        )
    )


def backup_run_get(*, actor: Actor, public_id: Any) -> BackupRun:
    return get_visible_or_404(backup_run_list(actor=actor), public_id)


def snapshot_list(*, actor: Actor, as_of: datetime | None = None) -> QuerySet[Snapshot]:
    """Complete snapshots, newest first; with `as_of`, only those taken at or before it."""
    qs = (
        Snapshot.objects.visible_to(actor)
        .filter(forgotten_at__isnull=True)
        .select_related("dataset", "location", "run")
    )
    if as_of is not None:
        qs = qs.filter(taken_at__lte=as_of)
    return qs


def restore_list(*, actor: Actor) -> QuerySet[RestoreRun]:
    return RestoreRun.objects.visible_to(actor).select_related(
        "dataset", "snapshot", "snapshot__location", "destination_location", "requested_by"
    )
