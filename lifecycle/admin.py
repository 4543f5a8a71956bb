"""Admin: the access log is read-only here too (append-only by design)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from lifecycle.models import AccessEvent, DeletionRequest, DeletionSettings, StorageLogSource


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin[AccessEvent]):
    list_display = ("organization", "seq", "occurred_at", "action", "actor_label", "client_ref")
    list_filter = ("action", "actor_kind")
    search_fields = ("actor_label", "public_id")
    ordering = ("organization", "-seq")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StorageLogSource)
class StorageLogSourceAdmin(admin.ModelAdmin[StorageLogSource]):
    list_display = ("organization", "location", "prefix", "last_ingested_at")
    readonly_fields = ("last_ingested_at",)


@admin.register(DeletionSettings)
class DeletionSettingsAdmin(admin.ModelAdmin[DeletionSettings]):
    """Where an organization asks for a second approver on every deletion."""

    list_display = ("organization", "approvals_required")


@admin.register(DeletionRequest)
class DeletionRequestAdmin(admin.ModelAdmin[DeletionRequest]):
    """Read-only: requests change only through their services (approval, execution)."""

    list_display = ("organization", "client", "scope", "state", "created_at", "verified_at")
    list_filter = ("state", "scope")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
