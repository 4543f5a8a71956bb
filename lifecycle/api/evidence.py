"""Procurement evidence: the signed document, its processing record, its schema, and the
procurement tokens that read it."""

from __future__ import annotations

import builtins
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients.models import Client
from kernel.api import AdminWrites, OneDocumentSchema, OrganizationWideReads, TenantViewSet
from kernel.http import request_origin
from kernel.tenancy import get_visible_or_404
from lifecycle import selectors, services
from lifecycle.api.signing import CanonicalJSONRenderer
from lifecycle.models import ProcessingRecord, ProcurementToken, SigningKey
from lifecycle.services.processing_records import SAFEGUARDS

CLIENT_ID = OpenApiParameter(
    "client_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The client's id."
)


class TransferSerializer(serializers.Serializer[Any]):
    country = serializers.CharField(
        max_length=300, help_text="ISO 3166-1 alpha-2 code, or 'INTL:<organisation>'."
    )
    recipient = serializers.CharField(max_length=300)
    safeguard = serializers.ChoiceField(choices=SAFEGUARDS)
    documentation = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ProcessingRecordSerializer(serializers.ModelSerializer[ProcessingRecord]):
    processing_categories = serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=50, required=False
    )
    transfers = TransferSerializer(many=True, required=False)
    updated_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ProcessingRecord
        fields = (
            "processor_contact",
            "processor_representative",
            "processor_dpo",
            "controller_contact",
            "controller_representative",
            "controller_dpo",
            "processing_categories",
            "transfers",
            "security_measures",
            "updated_at",
            "updated_by",
        )


@extend_schema(parameters=[CLIENT_ID])
class EvidenceViewSet(TenantViewSet[Any]):
    """`GET /api/v1/clients/{client_id}/evidence/`: the client's signed evidence, generated
    from live data. Owners, admins and auditors; leads with a grant on the client; the
    client's procurement tokens. Each read is one access event (`evidence_read`). The body is
    canonical JSON: save it as it is and `manage.py verify_evidence FILE` checks it offline."""

    procurement_actions = frozenset({"list"})
    serializer_class = ProcessingRecordSerializer
    pagination_class = None  # one document, not a collection
    filter_backends = ()
    schema = OneDocumentSchema()

    def get_queryset(self) -> Any:
        return Client.objects.none()  # nothing is listed: every answer is about one client

    def get_renderers(self) -> builtins.list[renderers.BaseRenderer]:
        if self.action == "list":
            return [CanonicalJSONRenderer()]
        return super().get_renderers()

    def _client(self) -> Client:
        return selectors.evidence_client_get(actor=self.actor, public_id=self.kwargs["client_id"])

    @extend_schema(
        responses={
            200: OpenApiResponse(
                response=services.evidence_openapi_schema(),
                description="The evidence document and its detached Ed25519 signature; the "
                "same schema is published at /api/v1/evidence/schema/.",
            )
        }
    )
    def list(self, request: Request, client_id: str) -> HttpResponse:  # URL kwarg name
        signed = services.evidence_read(
            actor=self.actor, client=self._client(), origin=request_origin(request)
        )
        self.access_event_recorded = True  # the read's one event, with the reader
        # Serialized once, by the service: these bytes are what was signed around.
        response = HttpResponse(signed.raw, content_type="application/json")
        slug = signed.document["client"]["slug"]
        response["Content-Disposition"] = f'inline; filename="evidence-{slug}.json"'
        return response

    @extend_schema(request=ProcessingRecordSerializer, responses=ProcessingRecordSerializer)
    @action(detail=False, methods=["get", "patch"], url_path="processing-record")
    def processing_record(self, request: Request, client_id: str) -> Response:
        """The client's record of processing (GDPR Art. 30(2)), published in its evidence;
        owners and admins edit it."""
        client = self._client()
        if request.method == "PATCH":
            body = ProcessingRecordSerializer(data=request.data, partial=True)
            body.is_valid(raise_exception=True)
            record = services.processing_record_update(
                actor=self.actor, client=client, **body.validated_data
            )
        else:
            record = services.processing_record_get(client)
        return Response(ProcessingRecordSerializer(record).data)


class EvidenceTokenSerializer(serializers.ModelSerializer[ProcurementToken]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = serializers.UUIDField(source="client.public_id", read_only=True)
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    revoked_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    expires_at = serializers.DateTimeField(
        help_text="Required: when the token stops working, at most 366 days from now."
    )

    class Meta:
        model = ProcurementToken
        fields = (
            "id",
            "client",
            "name",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        )
        read_only_fields = ("created_at", "last_used_at", "revoked_at")


class IssuedEvidenceTokenSerializer(EvidenceTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only its hash is kept.")

    class Meta(EvidenceTokenSerializer.Meta):
        fields = (*EvidenceTokenSerializer.Meta.fields, "token")  # type: ignore[assignment]  # one more


@extend_schema(parameters=[CLIENT_ID])
class EvidenceTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[ProcurementToken]
):
    """A client's procurement tokens: owners and admins issue (the token is shown once) and
    revoke them; auditors see them. A token reads that client's evidence and deletion
    certificates, nothing else; it always expires (at most 366 days)."""

    serializer_class = EvidenceTokenSerializer
    extra_permission_classes = (OrganizationWideReads, AdminWrites)

    def _client(self) -> Client:
        return get_visible_or_404(
            Client.objects.visible_to(self.actor).select_related("organization"),
            self.kwargs["client_id"],
        )

    def get_queryset(self) -> QuerySet[ProcurementToken]:
        if getattr(self, "swagger_fake_view", False):
            return ProcurementToken.objects.none()
        return selectors.evidence_token_list(actor=self.actor, client=self._client())

    @extend_schema(request=EvidenceTokenSerializer, responses={201: IssuedEvidenceTokenSerializer})
    def create(self, request: Request, client_id: str) -> Response:  # URL kwarg name
        client = self._client()
        body = EvidenceTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = services.evidence_token_issue(
            actor=self.actor,
            client=client,
            name=body.validated_data["name"],
            expires_at=body.validated_data["expires_at"],
            origin=request_origin(request),
        )
        data = dict(EvidenceTokenSerializer(token).data)
        data["token"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EvidenceTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, client_id: str, id: str) -> Response:  # URL kwarg names
        token = services.evidence_token_revoke(
            actor=self.actor, token=self.get_object(), origin=request_origin(request)
        )
        return Response(EvidenceTokenSerializer(token).data)


class EvidenceSchemaViewSet(TenantViewSet[Any]):
    """`GET /api/v1/evidence/schema/`: the JSON Schema (draft 2020-12) of the signed evidence,
    every field described. Any member, and procurement tokens."""

    procurement_actions = frozenset({"list"})
    pagination_class = None  # one document, not a collection
    filter_backends = ()
    schema = OneDocumentSchema()

    def get_queryset(self) -> Any:
        return SigningKey.objects.none()  # nothing is listed

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="A JSON Schema (draft 2020-12) document."
            )
        }
    )
    def list(self, request: Request) -> Response:
        return Response(services.evidence_json_schema())
