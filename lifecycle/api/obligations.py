"""Obligations and legal holds, and the "end" action the lifecycle app adds to engagements
(ending one computes its obligations' due dates)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients import api as clients_api
from clients.models import Client, Dataset, Engagement
from kernel.api import AdminWrites, TenantViewSet, VisibleRelatedField
from lifecycle import selectors, services
from lifecycle.models import LegalHold, ObligationKind, RetentionObligation

# --- engagements: the lifecycle app adds "end" ---


class EngagementEndSerializer(serializers.Serializer[Any]):
    ends_on = serializers.DateField(required=False)


class EngagementViewSet(clients_api.EngagementViewSet):
    """Engagements; `POST …/end/` ends one and computes its obligations' due dates."""

    @extend_schema(request=EngagementEndSerializer, responses=clients_api.EngagementSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request: Request, id: str) -> Response:  # URL kwarg name
        engagement = self.get_object()
        body = EngagementEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = services.engagement_end(
            actor=self.actor, engagement=engagement, ends_on=body.validated_data.get("ends_on")
        )
        fresh = self.get_queryset().get(pk=done.pk)
        return Response(self.get_serializer(fresh).data)


# --- obligations ---


class ObligationSerializer(serializers.ModelSerializer[RetentionObligation]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client)
    engagement = VisibleRelatedField(Engagement, required=False, allow_null=True)
    dataset = VisibleRelatedField(Dataset, required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=ObligationKind.choices)
    drafted_request = serializers.UUIDField(
        source="drafted_request.public_id", read_only=True, allow_null=True
    )

    class Meta:
        model = RetentionObligation
        fields = (
            "id",
            "client",
            "engagement",
            "dataset",
            "kind",
            "days_after_end",
            "retain_until",
            "retain_years",
            "source",
            "source_reference",
            "due_on",
            "drafted_request",
            "created_at",
        )
        read_only_fields = ("due_on", "created_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for name in ("client", "engagement", "dataset"):
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    raise serializers.ValidationError({name: "An obligation keeps its scope."})
                attrs.pop(name, None)
        return attrs


class ObligationViewSet(clients_api._WriteThroughServices, mixins.DestroyModelMixin):
    """Retention obligations (delete N days after the engagement, retain until, retain for N
    years) with their computed due date. Owners and admins write."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    serializer_class = ObligationSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.obligation_list)

    def create_with(self, data: dict[str, Any]) -> RetentionObligation:
        return services.obligation_create(actor=self.actor, **data)

    def update_with(self, instance: RetentionObligation, data: dict[str, Any]) -> Any:
        return services.obligation_update(actor=self.actor, obligation=instance, **data)

    def perform_destroy(self, instance: RetentionObligation) -> None:
        services.obligation_delete(actor=self.actor, obligation=instance)


# --- legal holds ---


class LegalHoldSerializer(serializers.ModelSerializer[LegalHold]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client)
    dataset = VisibleRelatedField(Dataset, required=False, allow_null=True)
    placed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    released_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = LegalHold
        fields = (
            "id",
            "client",
            "dataset",
            "reason",
            "active",
            "placed_by",
            "placed_at",
            "released_by",
            "released_at",
            "release_comment",
        )
        read_only_fields = ("placed_at", "released_at", "release_comment")


class LegalHoldReleaseSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True)


class LegalHoldViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TenantViewSet[LegalHold],
):
    """Legal holds: owners and admins place and release them; while one is active, deletions
    in its scope are refused (409) and backup pruning is suspended."""

    serializer_class = LegalHoldSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.legal_hold_list)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.legal_hold_place(
            actor=self.actor, **serializer.validated_data
        )

    @extend_schema(request=LegalHoldReleaseSerializer, responses=LegalHoldSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, id: str) -> Response:  # URL kwarg name
        body = LegalHoldReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hold = services.legal_hold_release(
            actor=self.actor, hold=self.get_object(), comment=body.validated_data.get("comment", "")
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=hold.pk)).data)
