"""The data inventory: datasets."""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import serializers

from clients import selectors, services
from clients.api.common import MemberUserField, _WriteThroughServices
from clients.models import (
    MAX_RPO,
    MAX_RTO,
    MIN_DURATION,
    Classification,
    Client,
    Dataset,
    DatasetKind,
    Engagement,
    LifecycleState,
    StorageLocation,
)
from kernel.api import FlexibleDurationField, VisibleRelatedField


class DatasetSerializer(serializers.ModelSerializer[Dataset]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client)
    engagement = VisibleRelatedField(Engagement, required=False, allow_null=True)
    location = VisibleRelatedField(StorageLocation)
    kind = serializers.ChoiceField(choices=DatasetKind.choices)
    classification = serializers.ChoiceField(choices=Classification.choices, required=False)
    lifecycle_state = serializers.ChoiceField(
        choices=[
            (s.value, s.label)
            for s in LifecycleState
            if s not in (LifecycleState.DELETION_PENDING, LifecycleState.DELETED)
        ],
        required=False,
    )
    owner = MemberUserField(required=False, allow_null=True)
    registered_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    rpo = FlexibleDurationField(required=False, min_value=MIN_DURATION, max_value=MAX_RPO)
    rto = FlexibleDurationField(required=False, min_value=MIN_DURATION, max_value=MAX_RTO)

    class Meta:
        model = Dataset
        fields = (
            "id",
            "client",
            "engagement",
            "name",
            "kind",
            "classification",
            "contains_personal_data",
            "source",
            "location",
            "path",
            "owner",
            "rpo",
            "rto",
            "lifecycle_state",
            "registered_by",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "client" in attrs:
            if attrs["client"] != self.instance.client:
                raise serializers.ValidationError({"client": "A dataset cannot change client."})
            attrs.pop("client")
        return attrs


class DatasetFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")
    engagement = django_filters.UUIDFilter(field_name="engagement__public_id")
    location = django_filters.UUIDFilter(field_name="location__public_id")

    class Meta:
        model = Dataset
        fields = (
            "client",
            "engagement",
            "location",
            "kind",
            "classification",
            "lifecycle_state",
            "contains_personal_data",
        )


class DatasetViewSet(_WriteThroughServices):
    """The data inventory. Registering needs a `manage` grant on the client (or admin)."""

    serializer_class = DatasetSerializer
    selector = staticmethod(selectors.dataset_list)
    filterset_class = DatasetFilter

    def create_with(self, data: dict[str, Any]) -> Dataset:
        return services.dataset_register(actor=self.actor, **data)

    def update_with(self, instance: Dataset, data: dict[str, Any]) -> Dataset:
        return services.dataset_update(actor=self.actor, dataset=instance, **data)
