"""Inventory API: thin views that validate input, call a service or selector, shape output."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients import selectors, services
from clients.models import (
    MAX_RPO,
    MAX_RTO,
    MIN_DURATION,
    AccessGrant,
    ApiToken,
    Classification,
    Client,
    ClientNamespace,
    ClientStatus,
    Dataset,
    DatasetKind,
    Engagement,
    GrantPermission,
    GrantRequest,
    LifecycleState,
    LocationKind,
    Membership,
    Provider,
    Role,
    StorageLocation,
)
from kernel.api import (
    AdminWrites,
    FlexibleDurationField,
    OrganizationWideReads,
    TenantViewSet,
    VisibleRelatedField,
)
from kernel.tenancy import Actor

User = get_user_model()


class MemberUserField(serializers.SlugRelatedField[Any]):
    """A user of the actor's organization, by username."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(slug_field="username", **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        actor: Actor | None = self.context.get("actor")
        if actor is None:
            return User.objects.none()
        return selectors.member_user_list(actor=actor)


class _WriteThroughServices(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[Any]):
    """List/retrieve from the selector; create/update go through `create_with`/`update_with`
    and the result is read back through the selector so annotations are present."""

    http_method_names = ["get", "post", "patch", "head", "options"]

    def create_with(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update_with(self, instance: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = self.create_with(dict(serializer.validated_data))
        fresh = self.get_queryset().get(pk=created.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = self.update_with(instance, dict(serializer.validated_data))
        fresh = self.get_queryset().get(pk=updated.pk)
        return Response(self.get_serializer(fresh).data)


# --- clients ---


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
        return services.client_update(actor=self.actor, client=instance, data=data)


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
        return services.engagement_update(actor=self.actor, engagement=instance, data=data)


# --- storage locations ---


class CredentialsSerializer(serializers.Serializer[Any]):
    access_key_id = serializers.CharField(max_length=256, write_only=True)
    secret_access_key = serializers.CharField(
        max_length=256, write_only=True, style={"input_type": "password"}
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
        "(only where the operator allows it); none: a local directory.",
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
        credentials = data.pop("credentials", None)
        return services.location_create(actor=self.actor, credentials=credentials, **data)

    def update_with(self, instance: StorageLocation, data: dict[str, Any]) -> StorageLocation:
        credentials = data.pop("credentials", None)
        return services.location_update(
            actor=self.actor, location=instance, data=data, credentials=credentials
        )


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


# --- datasets ---


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
        client = data.pop("client")
        return services.dataset_register(actor=self.actor, client=client, **data)

    def update_with(self, instance: Dataset, data: dict[str, Any]) -> Dataset:
        return services.dataset_update(actor=self.actor, dataset=instance, data=data)


# --- grants ---


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


# --- members ---


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
