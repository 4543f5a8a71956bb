"""The organization's members and roles, and personal API tokens."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients import selectors, services
from clients.api.common import _WriteThroughServices
from clients.models import ApiToken, Membership, Role
from kernel.api import AdminWrites, OrganizationWideReads, TenantViewSet


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    username = serializers.CharField(source="user.username", max_length=150)
    email = serializers.EmailField(source="user.email", required=False, allow_blank=True)
    password = serializers.CharField(
        write_only=True,
        required=False,
        min_length=12,
        max_length=128,
        style={"input_type": "password"},
        help_text="Only when creating a new user; never returned.",
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ("id", "username", "email", "password", "role", "created_at")
        read_only_fields = ("created_at",)


class MemberRoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipViewSet(_WriteThroughServices):
    """The organization's members and their roles (owners, admins; auditors read)."""

    serializer_class = MembershipSerializer
    extra_permission_classes = (OrganizationWideReads, AdminWrites)
    selector = staticmethod(selectors.membership_list)

    def get_serializer_class(self) -> Any:
        return MemberRoleSerializer if self.action == "partial_update" else MembershipSerializer

    def create_with(self, data: dict[str, Any]) -> Membership:
        user_data = data.get("user", {})
        return services.member_create(
            actor=self.actor,
            username=user_data.get("username", ""),
            email=user_data.get("email", ""),
            password=data.get("password") or None,
            role=data["role"],
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.membership_set_role(
            actor=self.actor, membership=instance, role=serializer.validated_data["role"]
        )
        fresh = self.get_queryset().get(pk=instance.pk)
        return Response(MembershipSerializer(fresh, context=self.get_serializer_context()).data)


# --- tokens ---


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = ApiToken
        fields = ("id", "name", "created_at", "expires_at", "last_used_at", "revoked_at")
        read_only_fields = ("created_at", "last_used_at", "revoked_at")


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only its hash is kept.")

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "token")  # type: ignore[assignment]  # one more


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[ApiToken]):
    """Your personal API tokens. The token itself is shown once, at creation."""

    serializer_class = TokenSerializer
    selector = staticmethod(selectors.token_list)

    @extend_schema(request=TokenSerializer, responses={201: IssuedTokenSerializer})
    def create(self, request: Request) -> Response:
        serializer = TokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = services.api_token_issue(user=request.user, **serializer.validated_data)
        body = dict(TokenSerializer(token).data)
        body["token"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, id: str) -> Response:  # URL kwarg name
        token = services.api_token_revoke(actor=self.actor, token=self.get_object())
        return Response(TokenSerializer(token).data)
