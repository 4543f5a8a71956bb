"""Admin: the access log is read-only here too (append-only by design)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from lifecycle.models import AccessEvent, StorageLogSource


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
