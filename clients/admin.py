"""Django admin for every inventory model. Secrets are neither shown nor editable here.

The admin is no way around the lifecycle: deleting a client, an engagement, a dataset or a
location, or moving one, is a step with rules (four eyes, legal holds, a certificate, access
events) that only the services enforce. So those rows cannot be deleted here, their lifecycle
fields are read-only, and locations are created through the API, whose services check the
operator's local roots and egress policy.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
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


class NoDeleteAdmin(admin.ModelAdmin[Any]):
    """Rows only a service may remove: no delete view, no "delete selected" action. Django's
    delete of any other row (an organization, a user) also refuses a cascade that reaches one
    of these, since it asks each reached model's admin for delete permission."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def _on_change(obj: Any, fields: tuple[str, ...]) -> tuple[str, ...]:
    # Whose a row is and where its data lives are set once, when it is created.
    return fields if obj is not None else ()


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
class ClientAdmin(NoDeleteAdmin, GuardedModelAdmin):  # type: ignore[misc]  # guardian types change_form_template str, Django's stubs str | None
    list_display = ("name", "organization", "status", "contract_reference")
    list_filter = ("organization", "status")
    search_fields = ("name", "slug")
    # Offboarding and closing a client go through its engagements' ends and deletions.
    readonly_fields = ("public_id", "status")
    list_select_related = ("organization",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, *_on_change(obj, ("organization",)))


@admin.register(Engagement)
class EngagementAdmin(NoDeleteAdmin):
    list_display = ("name", "client", "status", "starts_on", "ends_on")
    list_filter = ("status",)
    # Ending an engagement starts the deletion clock of its data: `engagement_end` only.
    readonly_fields = ("public_id", "status", "ends_on")
    list_select_related = ("client",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, *_on_change(obj, ("organization", "client")))


@admin.register(StorageLocation)
class StorageLocationAdmin(NoDeleteAdmin):
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
    # Where the data lives and whose it is. The API's services check a location against the
    # operator's local roots and egress policy when it is created; here it can only be renamed
    # or described.
    placement_fields = (
        "organization",
        "kind",
        "provider",
        "endpoint_url",
        "bucket",
        "prefix",
        "client",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # POST /api/v1/locations/ (owners and admins)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, *_on_change(obj, self.placement_fields))

    @admin.display(boolean=True, description="credentials")
    def has_credentials(self, obj: StorageLocation) -> bool:
        return obj.has_credentials


@admin.register(Dataset)
class DatasetAdmin(NoDeleteAdmin, GuardedModelAdmin):  # type: ignore[misc]  # guardian types change_form_template str, Django's stubs str | None
    list_display = ("name", "client", "kind", "classification", "lifecycle_state", "location")
    list_filter = ("kind", "classification", "lifecycle_state")
    search_fields = ("name",)
    # The state moves with the services (completion, deletion); a tombstone stays one.
    readonly_fields = ("public_id", "lifecycle_state")
    list_select_related = ("client", "location")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Whose it is, where its primary copy lives, and which engagement's end deletes it.
        placement = ("organization", "client", "engagement", "location", "path")
        return (*self.readonly_fields, *_on_change(obj, placement))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Registration goes through dataset_register: the path must lie in the client's folder
        # of the location, and the dataset gets its protection (policy, key) there.
        return False


@admin.register(AccessGrant)
class AccessGrantAdmin(NoDeleteAdmin):
    list_display = ("grantee", "client", "dataset", "permission", "expires_at", "revoked_at")
    list_filter = ("permission",)
    readonly_fields = ("public_id",)
    list_select_related = ("grantee", "client", "dataset")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Grants must go through the service so guardian rows follow; the admin only reads.
        # (Deleting one here would leave its guardian rows, and the access, behind.)
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ("name", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("token_hash",)
    readonly_fields = ("public_id", "user", "organization", "created_at", "last_used_at")

    def has_add_permission(self, request: object) -> bool:
        return False
