"""Admin: the lifecycle's records are read-only here. The access log is append-only by design;
obligations, legal holds, deletion requests and certificates change only through their
services (four eyes, hold checks, access events), and the signing key is never replaced or
removed: certificates and evidence already handed out verify only under it. They are
registered so the operator can see them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from clients.admin import NoDeleteAdmin
from lifecycle.models import (
    AccessEvent,
    DeletionCertificate,
    DeletionRequest,
    DeletionSettings,
    LegalHold,
    RetentionObligation,
    SigningKey,
    StorageLogSource,
)


class _ReadOnly(NoDeleteAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessEvent)
class AccessEventAdmin(_ReadOnly):
    list_display = ("organization", "seq", "occurred_at", "action", "actor_label", "client_ref")
    list_filter = ("action", "actor_kind")
    search_fields = ("actor_label", "public_id")
    ordering = ("organization", "-seq")


@admin.register(StorageLogSource)
class StorageLogSourceAdmin(admin.ModelAdmin[StorageLogSource]):
    list_display = ("organization", "location", "prefix", "last_ingested_at")
    readonly_fields = ("last_ingested_at",)


@admin.register(DeletionSettings)
class DeletionSettingsAdmin(admin.ModelAdmin[DeletionSettings]):
    """Where an organization asks for a second approver on every deletion."""

    list_display = ("organization", "approvals_required")


@admin.register(RetentionObligation)
class RetentionObligationAdmin(_ReadOnly):
    """Obligations decide when a scope must be deleted or may not be: the API's services
    compute their due dates and check their scope."""

    list_display = ("organization", "client", "kind", "source", "due_on", "drafted_request")
    list_filter = ("kind", "source")
    list_select_related = ("organization", "client", "drafted_request")


@admin.register(LegalHold)
class LegalHoldAdmin(_ReadOnly):
    """Placing and releasing a hold suspends and resumes pruning: the services only."""

    list_display = ("organization", "client", "dataset", "placed_by", "placed_at", "released_at")
    list_filter = ("released_at",)
    list_select_related = ("organization", "client", "dataset", "placed_by")


@admin.register(DeletionRequest)
class DeletionRequestAdmin(_ReadOnly):
    """Requests change only through their services (approval, execution)."""

    list_display = ("organization", "client", "scope", "state", "created_at", "verified_at")
    list_filter = ("state", "scope")


@admin.register(DeletionCertificate)
class DeletionCertificateAdmin(_ReadOnly):
    """The signed proof of a deletion, as issued."""

    list_display = ("public_id", "organization", "client", "issued_at", "sha256")
    list_select_related = ("organization", "client")
    readonly_fields = ("public_id",)


@admin.register(SigningKey)
class SigningKeyAdmin(_ReadOnly):
    """The public half only; the sealed private half is never shown."""

    list_display = ("organization", "public_key", "created_at")
    list_select_related = ("organization",)
    exclude = ("private_sealed",)
    readonly_fields = ("public_id",)
