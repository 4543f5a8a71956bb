"""Django admin for every inventory model. Secrets are neither shown nor editable here."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from guardian.admin import GuardedModelAdmin

from clients.models import (
    AccessGrant,
    ApiToken,
    Client,
    Dataset,
    Engagement,
    Membership,
    Organization,
    StorageLocation,
)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "organization", "role")
    list_filter = ("organization", "role")
    search_fields = ("user__username",)
    list_select_related = ("user", "organization")


@admin.register(Client)
class ClientAdmin(GuardedModelAdmin):
    list_display = ("name", "organization", "status", "contract_reference")
    list_filter = ("organization", "status")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id",)
    list_select_related = ("organization",)


@admin.register(Engagement)
class EngagementAdmin(admin.ModelAdmin[Engagement]):
    list_display = ("name", "client", "status", "starts_on", "ends_on")
    list_filter = ("status",)
    readonly_fields = ("public_id",)
    list_select_related = ("client",)


@admin.register(StorageLocation)
class StorageLocationAdmin(admin.ModelAdmin[StorageLocation]):
    list_display = (
        "name",
        "organization",
        "kind",
        "provider",
        "bucket",
        "prefix",
        "has_credentials",
    )
    list_filter = ("kind", "provider")
    # credentials_sealed is not editable and not listed; set credentials through the API.
    exclude = ("credentials_sealed",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("public_id",)
    list_select_related = ("organization",)

    @admin.display(boolean=True, description="credentials")
    def has_credentials(self, obj: StorageLocation) -> bool:
        return obj.has_credentials


@admin.register(Dataset)
class DatasetAdmin(GuardedModelAdmin):
    list_display = ("name", "client", "kind", "classification", "lifecycle_state", "location")
    list_filter = ("kind", "classification", "lifecycle_state")
    search_fields = ("name",)
    readonly_fields = ("public_id",)
    list_select_related = ("client", "location")


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin[AccessGrant]):
    list_display = ("grantee", "client", "dataset", "permission", "expires_at", "revoked_at")
    list_filter = ("permission",)
    readonly_fields = ("public_id",)
    list_select_related = ("grantee", "client", "dataset")

    def has_add_permission(self, request: object) -> bool:
        # Grants must go through the service so guardian rows follow; the admin only reads.
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ("name", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("token_hash",)
    readonly_fields = ("public_id", "user", "organization", "created_at", "last_used_at")

    def has_add_permission(self, request: object) -> bool:
        return False
