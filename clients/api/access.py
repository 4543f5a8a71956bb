"""Access grants, and the requests for them that owners and admins decide."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients import selectors, services
from clients.api.common import MemberUserField
from clients.models import AccessGrant, Client, Dataset, GrantPermission, GrantRequest
from kernel.api import AdminWrites, TenantViewSet, VisibleRelatedField
from kernel.tenancy import Actor


class GrantSerializer(serializers.ModelSerializer[AccessGrant]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    grantee = MemberUserField()
    client = VisibleRelatedField(Client)
    dataset = VisibleRelatedField(Dataset, required=False, allow_null=True)
    permission = serializers.ChoiceField(choices=GrantPermission.choices)
    expires_at = serializers.DateTimeField(required=False)
    granted_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    revoked_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = AccessGrant
        fields = (
            "id",
            "grantee",
            "client",
            "dataset",
            "permission",
            "reason",
            "expires_at",
            "granted_by",
            "created_at",
            "revoked_at",
            "revoked_by",
        )
        read_only_fields = ("created_at", "revoked_at")


class GrantFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")
    grantee = django_filters.CharFilter(field_name="grantee__username")
    active = django_filters.BooleanFilter(method="filter_active")

    class Meta:
        model = AccessGrant
        fields = ("client", "dataset", "grantee", "permission")

    def filter_active(self, queryset: Any, name: str, value: bool) -> Any:
        from django.utils import timezone

        active = queryset.active(timezone.now())
        return active if value else queryset.exclude(pk__in=active.values("pk"))


class GrantViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TenantViewSet[AccessGrant],
):
    """Access grants: admins grant and revoke; everyone sees their own."""

    serializer_class = GrantSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.grant_list)
    filterset_class = GrantFilter

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.grant_create(actor=self.actor, **serializer.validated_data)

    @extend_schema(request=None, responses=GrantSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, id: str) -> Response:  # URL kwarg name
        grant = services.grant_revoke(actor=self.actor, grant=self.get_object())
        return Response(self.get_serializer(grant).data)


# --- grant requests ---


class OrganizationObjectField(VisibleRelatedField):
    """A client or dataset of the actor's organization, granted or not: a lead asks for access
    to what it cannot see yet, by an id a colleague gave it. Never another organization's."""

    def get_queryset(self) -> Any:
        actor: Actor | None = self.context.get("actor")
        if actor is None:
            return self.model._default_manager.none()
        return self.model._default_manager.filter(organization_id=actor.organization_id)


# "GrantRequest" is already the request component of GrantSerializer in the schema.
@extend_schema_serializer(component_name="AccessRequest")
class GrantRequestSerializer(serializers.ModelSerializer[GrantRequest]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = OrganizationObjectField(Client)
    dataset = OrganizationObjectField(Dataset, required=False, allow_null=True)
    permission = serializers.ChoiceField(choices=GrantPermission.choices)
    # The maximum is the operator's setting, checked by the service.
    days = serializers.IntegerField(min_value=1, required=False)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    grant = serializers.UUIDField(source="grant.public_id", read_only=True, allow_null=True)

    class Meta:
        model = GrantRequest
        fields = (
            "id",
            "client",
            "dataset",
            "permission",
            "reason",
            "days",
            "status",
            "requested_by",
            "created_at",
            "decided_at",
            "decided_by",
            "decision_note",
            "grant",
        )
        read_only_fields = ("status", "created_at", "decided_at", "decision_note")


class GrantDecisionSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class GrantRequestFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")

    class Meta:
        model = GrantRequest
        fields = ("client", "status")


class GrantRequestViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TenantViewSet[GrantRequest],
):
    """Leads and members ask for a grant; owners and admins approve or reject (never their own).
    Requesters see their own requests; owners, admins and auditors see all."""

    serializer_class = GrantRequestSerializer
    selector = staticmethod(selectors.grant_request_list)
    filterset_class = GrantRequestFilter

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.grant_request_create(
            actor=self.actor, **serializer.validated_data
        )

    def _decide(self, request: Request, decide: Any) -> Response:
        target = self.get_object()
        body = GrantDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = decide(actor=self.actor, request=target, note=body.validated_data.get("note", ""))
        fresh = self.get_queryset().get(pk=done.pk)
        return Response(self.get_serializer(fresh).data)

    @extend_schema(request=GrantDecisionSerializer, responses=GrantRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, id: str) -> Response:  # URL kwarg name
        return self._decide(request, services.grant_request_approve)

    @extend_schema(request=GrantDecisionSerializer, responses=GrantRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, id: str) -> Response:  # URL kwarg name
        return self._decide(request, services.grant_request_reject)
