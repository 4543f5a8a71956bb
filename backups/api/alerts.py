"""Alerts API (list, detail, acknowledge), reviews (record, list) and the organization's
notification settings (read, replace, send a test). The webhook URL is write-only: reads show
whether one is configured and its host, never the URL."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backups import selectors
from backups.models import (
    Alert,
    AlertKind,
    AlertState,
    BackupPolicy,
    DeliveryChannel,
    NotificationSettings,
    Review,
)
from backups.services import alerts as alert_services
from backups.services import notifications, sweep
from clients.models import Client
from kernel.api import AdminWrites, OneDocumentSchema, TenantViewSet, VisibleRelatedField

# --- alerts ---


class AlertSerializer(serializers.ModelSerializer[Alert]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = serializers.UUIDField(source="client.public_id", read_only=True, allow_null=True)
    client_name = serializers.CharField(source="client.name", read_only=True, allow_null=True)
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True, allow_null=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True, allow_null=True)
    location = serializers.UUIDField(source="location.public_id", read_only=True, allow_null=True)
    location_name = serializers.CharField(source="location.name", read_only=True, allow_null=True)
    policy = serializers.UUIDField(source="policy.public_id", read_only=True, allow_null=True)
    policy_name = serializers.CharField(source="policy.name", read_only=True, allow_null=True)
    acknowledged_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Alert
        fields = (
            "id",
            "kind",
            "incident_key",
            "state",
            "severity",
            "title",
            "message",
            "client",
            "client_name",
            "dataset",
            "dataset_name",
            "location",
            "location_name",
            "policy",
            "policy_name",
            "opened_at",
            "last_seen_at",
            "occurrences",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledgement_note",
            "resolved_at",
            "resolution",
        )
        read_only_fields = fields


class AlertFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=AlertState.choices)
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    client = django_filters.UUIDFilter(field_name="client__public_id")
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")

    class Meta:
        model = Alert
        fields = ("state", "kind", "client", "dataset")


class AcknowledgeSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[Alert]):
    """Alerts of the organization: those about a client follow its grants; organization-wide
    ones (a shared bucket, a policy review) are for owners, admins and auditors."""

    serializer_class = AlertSerializer
    selector = staticmethod(selectors.alert_list)
    filterset_class = AlertFilter

    @extend_schema(request=AcknowledgeSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, id: str) -> Response:  # URL kwarg name
        alert = self.get_object()
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert_services.alert_acknowledge(
            actor=self.actor, alert=alert, note=body.validated_data.get("note", "")
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


# --- reviews ---


class ReviewSerializer(serializers.ModelSerializer[Review]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client, required=False, allow_null=True)
    policy = VisibleRelatedField(BackupPolicy, required=False, allow_null=True)
    next_review_at = serializers.DateTimeField(required=False)
    reviewed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    class Meta:
        model = Review
        fields = (
            "id",
            "subject",
            "client",
            "policy",
            "note",
            "reviewed_by",
            "reviewed_at",
            "next_review_at",
        )
        read_only_fields = ("subject", "reviewed_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("client") is None) == (attrs.get("policy") is None):
            raise serializers.ValidationError(
                {"client": "Give either a client or a policy to review."}
            )
        return attrs


class ReviewFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")
    policy = django_filters.UUIDFilter(field_name="policy__public_id")

    class Meta:
        model = Review
        fields = ("client", "policy")


class ReviewViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, TenantViewSet[Review]):
    """Recorded reviews. Owners and admins record one for a client or a policy: its next
    review moves six months ahead (or to `next_review_at`) and its "review due" alert
    resolves."""

    serializer_class = ReviewSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.review_list)
    filterset_class = ReviewFilter

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = sweep.review_record(actor=self.actor, **serializer.validated_data)
        fresh = self.get_queryset().get(pk=review.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)


# --- notification settings ---


class NotificationSettingsSerializer(serializers.ModelSerializer[NotificationSettings]):
    id = serializers.SerializerMethodField()
    email_enabled = serializers.BooleanField(required=True)
    webhook_url = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="http(s) URL of a chat webhook; empty removes it; absent keeps it. Never read "
        "back.",
    )
    webhook_configured = serializers.BooleanField(source="has_webhook", read_only=True)
    webhook_host = serializers.SerializerMethodField()

    class Meta:
        model = NotificationSettings
        fields = ("id", "email_enabled", "webhook_url", "webhook_configured", "webhook_host")

    def get_id(self, obj: NotificationSettings) -> str | None:
        return str(obj.public_id) if obj.pk else None

    def get_webhook_host(self, obj: NotificationSettings) -> str | None:
        return notifications.webhook_host(obj)


class NotificationTestSerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=DeliveryChannel.choices)
    sent = serializers.BooleanField(read_only=True)
    detail = serializers.CharField(read_only=True)


class NotificationSettingsViewSet(TenantViewSet[NotificationSettings]):
    """One per organization, owners and admins only: GET reads, PUT replaces (`email_enabled`
    required; `webhook_url` absent keeps it, empty removes it), POST test/ sends a test."""

    serializer_class = NotificationSettingsSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(notifications.notification_settings_get)
    schema = OneDocumentSchema()  # GET answers the one settings object, not a page

    @classmethod
    def as_view(cls, actions: dict[str, Any] | None = None, **initkwargs: Any) -> Any:
        # A singleton at the collection URL: the router maps GET there; PUT is added here
        # (named `replace`, not `update`, so the router makes no detail route).
        if actions is not None and actions.get("get") == "list":
            actions = {**actions, "put": "replace"}
        return super().as_view(actions, **initkwargs)

    def list(self, request: Request) -> Response:
        found = notifications.notification_settings_get(actor=self.actor)
        return Response(self.get_serializer(found).data)

    @extend_schema(request=NotificationSettingsSerializer, responses=NotificationSettingsSerializer)
    def replace(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        saved = notifications.notification_settings_update(
            actor=self.actor,
            email_enabled=serializer.validated_data["email_enabled"],
            webhook_url=serializer.validated_data.get("webhook_url"),
        )
        return Response(self.get_serializer(saved).data)

    @extend_schema(request=NotificationTestSerializer, responses=NotificationTestSerializer)
    @action(detail=False, methods=["post"], url_path="test", url_name="test")
    def send_test(self, request: Request) -> Response:
        body = NotificationTestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = notifications.notification_settings_test(
            actor=self.actor, channel=body.validated_data["channel"]
        )
        return Response(
            NotificationTestSerializer(
                {"channel": result.channel, "sent": result.sent, "detail": result.detail}
            ).data
        )
