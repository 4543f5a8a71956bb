"""Storage locations (credentials write-only) and each client's folder on a shared one."""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import mixins, serializers

from clients import selectors, services
from clients.api.common import _WriteThroughServices
from clients.models import Client, ClientNamespace, LocationKind, Provider, StorageLocation
from kernel.api import AdminWrites, TenantViewSet, VisibleRelatedField


class CredentialsSerializer(serializers.Serializer[Any]):
    """Which fields a location takes depends on its kind (the service checks the shape): S3
    {access_key_id, secret_access_key}; git {username, token} or {ssh_private_key}; a database
    server {username, password}."""

    access_key_id = serializers.CharField(max_length=256, write_only=True, required=False)
    secret_access_key = serializers.CharField(
        max_length=256, write_only=True, required=False, style={"input_type": "password"}
    )
    username = serializers.CharField(max_length=256, write_only=True, required=False)
    token = serializers.CharField(
        max_length=1024, write_only=True, required=False, style={"input_type": "password"}
    )
    password = serializers.CharField(
        max_length=1024, write_only=True, required=False, style={"input_type": "password"}
    )
    ssh_private_key = serializers.CharField(
        max_length=16384,
        write_only=True,
        required=False,
        trim_whitespace=False,
        style={"input_type": "password", "base_template": "textarea.html"},
    )


class LocationSerializer(serializers.ModelSerializer[StorageLocation]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = serializers.ChoiceField(choices=LocationKind.choices)
    provider = serializers.ChoiceField(choices=Provider.choices)
    client = VisibleRelatedField(Client, required=False, allow_null=True)
    credentials = CredentialsSerializer(
        write_only=True, required=False, help_text="Write-only; stored encrypted, never returned."
    )
    has_credentials = serializers.BooleanField(read_only=True)
    credentials_source = serializers.ChoiceField(
        choices=[("stored", "stored"), ("ambient", "ambient"), ("none", "none")],
        read_only=True,
        help_text="stored: the location's own sealed credentials; ambient: the server's own "
        "(only where the operator allows it); none: a local directory, or a git host, "
        "database server or SaaS tool without credentials.",
    )

    class Meta:
        model = StorageLocation
        fields = (
            "id",
            "name",
            "kind",
            "provider",
            "endpoint_url",
            "region",
            "bucket",
            "prefix",
            "client",
            "credentials",
            "has_credentials",
            "credentials_source",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")


class LocationFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")

    class Meta:
        model = StorageLocation
        fields = ("kind", "provider", "client")


class LocationViewSet(_WriteThroughServices):
    """Storage locations. Credentials are write-only: accepted, sealed, never shown."""

    serializer_class = LocationSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.location_list)
    filterset_class = LocationFilter

    def create_with(self, data: dict[str, Any]) -> StorageLocation:
        return services.location_create(actor=self.actor, **data)

    def update_with(self, instance: StorageLocation, data: dict[str, Any]) -> StorageLocation:
        return services.location_update(actor=self.actor, location=instance, **data)


# --- client folders on shared locations ---


class NamespaceSerializer(serializers.ModelSerializer[ClientNamespace]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    location = VisibleRelatedField(StorageLocation)
    client = VisibleRelatedField(Client)
    path = serializers.CharField(
        max_length=1024, help_text="The client's folder, relative to the location."
    )

    class Meta:
        model = ClientNamespace
        fields = ("id", "location", "client", "path", "created_at")
        read_only_fields = ("created_at",)


class NamespaceFilter(django_filters.FilterSet):
    location = django_filters.UUIDFilter(field_name="location__public_id")
    client = django_filters.UUIDFilter(field_name="client__public_id")

    class Meta:
        model = ClientNamespace
        fields = ("location", "client")


class NamespaceViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet[ClientNamespace],
):
    """Each client's folder on a shared location: its datasets and restores stay inside it.
    Owners and admins assign and remove folders; leads see their granted clients'."""

    http_method_names = ["get", "post", "delete", "head", "options"]
    serializer_class = NamespaceSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.namespace_list)
    filterset_class = NamespaceFilter

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.namespace_assign(
            actor=self.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: ClientNamespace) -> None:
        services.namespace_remove(actor=self.actor, namespace=instance)
