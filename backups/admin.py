"""Django admin for the backup models. Keys are never shown; runs and snapshots are read-only
(they are written by workers, and a snapshot row must match what is on the target). Neither
they nor a dataset's protection are deleted here: the protection holds the wrapped data key
(destroying it is the crypto-erase step of an approved deletion), and runs, snapshots,
restores, audits, fixes and alerts are the record of what happened."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from backups.models import (
    Alert,
    AlertDelivery,
    BackupPolicy,
    BackupRun,
    BackupSchedule,
    DatasetProtection,
    NotificationSettings,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    PostureFix,
    RestoreRun,
    Review,
    Snapshot,
    StoragePrice,
)
from clients.admin import NoDeleteAdmin


class _ReadOnly(NoDeleteAdmin):
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
class DatasetProtectionAdmin(NoDeleteAdmin):
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
    exclude = ("wrapped_key", "lock_wrapping_key")
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


class PostureFindingInline(admin.TabularInline[PostureFinding, PostureAudit]):
    model = PostureFinding
    fields = ("check_name", "severity", "message", "fix_action")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(PostureAudit)
class PostureAuditAdmin(_ReadOnly):
    """What the storage service reported; written by audits only."""

    list_display = ("location", "audited_at", "trigger", "reachable", "requested_by")
    list_filter = ("trigger", "reachable")
    list_select_related = ("location", "requested_by")
    inlines = (PostureFindingInline,)


@admin.register(PostureFinding)
class PostureFindingAdmin(_ReadOnly):
    list_display = ("location", "check_name", "severity", "fix_action", "audit")
    list_filter = ("severity", "check_name")
    list_select_related = ("location", "audit")


@admin.register(PostureFix)
class PostureFixAdmin(_ReadOnly):
    """Changes made to buckets, kept as they happened."""

    list_display = ("location", "action", "succeeded", "requested_by", "created_at")
    list_filter = ("action", "succeeded")
    list_select_related = ("location", "requested_by")


# --- alerts and reviews ---


class AlertDeliveryInline(admin.TabularInline[AlertDelivery, Alert]):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("channel", "event", "recipients", "created_at", "sent_at", "attempts", "error")
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    """Alerts are opened and resolved by the system; acknowledge them through the API."""

    list_display = ("title", "organization", "kind", "state", "severity", "opened_at")
    list_filter = ("state", "kind", "severity")
    search_fields = ("title", "incident_key")
    list_select_related = ("organization",)
    inlines = (AlertDeliveryInline,)


@admin.register(Review)
class ReviewAdmin(_ReadOnly):
    list_display = ("__str__", "organization", "subject", "reviewed_by", "next_review_at")
    list_filter = ("subject",)
    list_select_related = ("organization", "client", "policy", "reviewed_by")


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(_ReadOnly):
    """The webhook URL is a secret: only whether one is set is shown."""

    list_display = ("organization", "email_enabled", "has_webhook", "updated_at")
    exclude = ("webhook_url_sealed",)
    list_select_related = ("organization",)


# --- prices ---


@admin.register(StoragePrice)
class StoragePriceAdmin(admin.ModelAdmin[StoragePrice]):
    """An organization's own price per GB-month; absent rows use AGENCYOPS_STORAGE_PRICES."""

    list_display = ("organization", "provider", "storage_class", "usd_per_gb_month", "updated_at")
    list_filter = ("provider", "storage_class")
    readonly_fields = ("public_id", "updated_at")
    list_select_related = ("organization",)
