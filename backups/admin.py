"""Django admin for the backup models. Keys are never shown; runs and snapshots are read-only
(they are written by workers, and a snapshot row must match what is on the target)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from backups.models import (
    BackupPolicy,
    BackupRun,
    BackupSchedule,
    DatasetProtection,
    PolicyTarget,
    RestoreRun,
    Snapshot,
)


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class PolicyTargetInline(admin.TabularInline[PolicyTarget, BackupPolicy]):
    model = PolicyTarget
    extra = 0


@admin.register(BackupPolicy)
class BackupPolicyAdmin(admin.ModelAdmin[BackupPolicy]):
    list_display = (
        "name",
        "organization",
        "frequency",
        "default_for",
        "keep_daily",
        "keep_monthly",
        "keep_forever",
    )
    list_filter = ("frequency", "default_for")
    readonly_fields = ("public_id",)
    inlines = (PolicyTargetInline,)
    list_select_related = ("organization",)


@admin.register(DatasetProtection)
class DatasetProtectionAdmin(admin.ModelAdmin[DatasetProtection]):
    list_display = (
        "dataset",
        "policy",
        "policy_pinned",
        "live_pipeline_input",
        "pruning_suspended",
        "key_destroyed_at",
    )
    list_filter = ("pruning_suspended", "policy_pinned")
    # The wrapped key is neither shown nor editable; legal holds set pruning_suspended.
    exclude = ("wrapped_key",)
    readonly_fields = (
        "public_id",
        "dataset",
        "organization",
        "pruning_suspended",
        "key_destroyed_at",
    )
    list_select_related = ("dataset", "policy")


@admin.register(BackupSchedule)
class BackupScheduleAdmin(admin.ModelAdmin[BackupSchedule]):
    list_display = ("dataset", "location", "next_due_at", "last_success_at")
    readonly_fields = ("public_id", "last_success_at")
    list_select_related = ("dataset", "location")


@admin.register(BackupRun)
class BackupRunAdmin(_ReadOnly):
    list_display = (
        "dataset",
        "trigger",
        "status",
        "created_at",
        "finished_at",
        "new_bytes",
        "attempts",
    )
    list_filter = ("status", "trigger")
    list_select_related = ("dataset",)


@admin.register(Snapshot)
class SnapshotAdmin(_ReadOnly):
    list_display = ("dataset", "location", "taken_at", "files", "bytes", "forgotten_at")
    list_select_related = ("dataset", "location")


@admin.register(RestoreRun)
class RestoreRunAdmin(_ReadOnly):
    list_display = ("dataset", "snapshot", "status", "is_drill", "created_at", "finished_at")
    list_filter = ("status", "is_drill")
    list_select_related = ("dataset", "snapshot")


# --- posture audits ---

# --- alerts and reviews ---
