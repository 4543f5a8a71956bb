"""Clients and their engagements."""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import serializers

from clients import selectors, services
from clients.api.common import _WriteThroughServices
from clients.models import Client, ClientStatus, Engagement
from kernel.api import AdminWrites, VisibleRelatedField


class ClientSerializer(serializers.ModelSerializer[Client]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    status = serializers.ChoiceField(choices=ClientStatus.choices, required=False)
    slug = serializers.SlugField(max_length=80, required=False)
    dataset_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Client
        fields = (
            "id",
            "name",
            "slug",
            "status",
            "contact_name",
            "contact_email",
            "contract_reference",
            "dpa_reference",
            "dataset_count",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")


class ClientFilter(django_filters.FilterSet):
    class Meta:
        model = Client
        fields = ("status",)


class ClientViewSet(_WriteThroughServices):
    """Clients of the organization (leads: only granted ones)."""

    serializer_class = ClientSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.client_list)
    filterset_class = ClientFilter

    def create_with(self, data: dict[str, Any]) -> Client:
        return services.client_create(actor=self.actor, **data)

    def update_with(self, instance: Client, data: dict[str, Any]) -> Client:
        return services.client_update(actor=self.actor, client=instance, **data)


# --- engagements ---


class EngagementSerializer(serializers.ModelSerializer[Engagement]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client)

    class Meta:
        model = Engagement
        fields = (
            "id",
            "client",
            "name",
            "starts_on",
            "ends_on",
            "status",
            "deletion_due_days",
            "created_at",
        )
        read_only_fields = ("status", "created_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        starts, ends = attrs.get("starts_on"), attrs.get("ends_on")
        if self.instance is not None:
            if "client" in attrs:
                if attrs["client"] != self.instance.client:
                    raise serializers.ValidationError(
                        {"client": "An engagement cannot change client."}
                    )
                attrs.pop("client")
            starts = starts or self.instance.starts_on
            ends = attrs.get("ends_on", self.instance.ends_on)
        if starts and ends and ends < starts:
            raise serializers.ValidationError(
                {"ends_on": "The engagement cannot end before it starts."}
            )
        return attrs


class EngagementFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")

    class Meta:
        model = Engagement
        fields = ("client", "status")


class EngagementViewSet(_WriteThroughServices):
    serializer_class = EngagementSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.engagement_list)
    filterset_class = EngagementFilter

    def create_with(self, data: dict[str, Any]) -> Engagement:
        return services.engagement_create(actor=self.actor, **data)

    def update_with(self, instance: Engagement, data: dict[str, Any]) -> Engagement:
        return services.engagement_update(actor=self.actor, engagement=instance, **data)
