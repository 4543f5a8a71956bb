"""Lifecycle API: the access log (list, CSV export, verification), obligations, legal holds,
deletion requests with their plan, decisions and certificate, the signing key, and procurement
evidence (the signed document, its schema, the processing record, procurement tokens)."""

from __future__ import annotations

import builtins
import csv
import json
from collections.abc import Iterator, Mapping
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients import api as clients_api
from clients.models import Client, Dataset, Engagement
from kernel.api import (
    AdminWrites,
    OneDocumentSchema,
    OrganizationWideReads,
    TenantViewSet,
    VisibleRelatedField,
)
from kernel.exceptions import Forbidden, NotFound
from kernel.http import request_origin
from kernel.tenancy import get_visible_or_404
from lifecycle import selectors, services
from lifecycle.models import (
    AccessAction,
    AccessEvent,
    DeletionApproval,
    DeletionRequest,
    LegalHold,
    ObligationKind,
    ProcessingRecord,
    ProcurementToken,
    RetentionObligation,
    SigningKey,
)
from lifecycle.services.processing_records import SAFEGUARDS


class AccessEventSerializer(serializers.ModelSerializer[AccessEvent]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    actor = serializers.CharField(source="actor_label", read_only=True)
    actor_token = serializers.UUIDField(source="actor_token_ref", read_only=True)
    client = serializers.UUIDField(source="client_ref", read_only=True)
    dataset = serializers.UUIDField(source="dataset_ref", read_only=True)
    snapshot = serializers.UUIDField(source="snapshot_ref", read_only=True)

    class Meta:
        model = AccessEvent
        fields = (
            "id",
            "seq",
            "occurred_at",
            "recorded_at",
            "action",
            "actor_kind",
            "actor",
            "actor_token",
            "client",
            "dataset",
            "snapshot",
            "source_ip",
            "user_agent",
            "details",
            "prev_hash",
            "hash",
        )
        read_only_fields = fields


class ChainReportSerializer(serializers.Serializer[Any]):
    organization = serializers.CharField()
    ok = serializers.BooleanField()
    events = serializers.IntegerField()
    head_seq = serializers.IntegerField()
    broken_at = serializers.IntegerField(allow_null=True)
    event = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class AccessEventFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client_ref")
    dataset = django_filters.UUIDFilter(field_name="dataset_ref")
    actor = django_filters.CharFilter(field_name="actor_label", max_length=300)
    action = django_filters.ChoiceFilter(choices=AccessAction.choices)
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AccessEvent
        fields = ("client", "dataset", "actor", "action", "since", "until")


class CsvRenderer(renderers.BaseRenderer):
    """Selects CSV (`?format=csv`, `Accept: text/csv`); the export streams its own body, so
    this renders only error answers."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if not isinstance(data, Mapping):
            return b""
        return f"detail,code\r\n{_cell(data.get('detail'))},{_cell(data.get('code'))}\r\n".encode()


CSV_COLUMNS = (
    "seq",
    "occurred_at",
    "action",
    "actor_kind",
    "actor",
    "client",
    "dataset",
    "snapshot",
    "source_ip",
    "user_agent",
    "details",
    "id",
    "hash",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with these as a formula; a user agent or a failed
    # login's username is whatever the caller sent.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Line:
    def write(self, value: str) -> str:
        return value


def _csv_rows(events: QuerySet[AccessEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    for e in events.iterator(chunk_size=2000):
        row = (
            e.seq,
            e.occurred_at.isoformat(),
            e.action,
            e.actor_kind,
            e.actor_label,
            e.client_ref,
            e.dataset_ref,
            e.snapshot_ref,
            e.source_ip,
            e.user_agent,
            json.dumps(e.details, sort_keys=True),
            e.public_id,
            e.hash,
        )
        yield writer.writerow([_cell(v) for v in row])


class AccessEventViewSet(mixins.ListModelMixin, TenantViewSet[AccessEvent]):
    """The access log, newest first: `?client=&dataset=&actor=&action=&since=&until=`.
    Owners, admins and auditors read everything; leads their granted clients'; members none.
    `?format=csv` (or `export.csv`) streams the same rows as CSV."""

    serializer_class = AccessEventSerializer
    selector = staticmethod(selectors.access_event_list)
    filterset_class = AccessEventFilter
    renderer_classes = (renderers.JSONRenderer, CsvRenderer)

    def _stream(self) -> StreamingHttpResponse:
        events = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="access-events.csv"'
        return response

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        if getattr(request.accepted_renderer, "format", None) == "csv":
            return self._stream()
        return super().list(request, *args, **kwargs)

    def get_renderers(self) -> builtins.list[renderers.BaseRenderer]:
        if self.action == "export":
            return [CsvRenderer(), renderers.JSONRenderer()]
        return super().get_renderers()

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)})
    def export(self, request: Request) -> Any:
        """`GET /api/v1/access-events/export.csv`: routed in agencyops.urls, because the router
        would add a trailing slash after the file name."""
        return self._stream()

    @extend_schema(responses=ChainReportSerializer)
    @action(detail=False, methods=["get"])
    def verify(self, request: Request) -> Response:
        """Walk the organization's whole chain; name the first broken link, if any."""
        if not self.actor.sees_whole_organization:
            raise Forbidden("Only owners, admins and auditors verify the whole access log.")
        report = services.access_log_verify(self.actor.organization)
        return Response(ChainReportSerializer(report.as_dict()).data)


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
        return services.obligation_update(actor=self.actor, obligation=instance, data=data)

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
        )
        read_only_fields = ("placed_at", "released_at")


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

    @extend_schema(request=None, responses=LegalHoldSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, id: str) -> Response:  # URL kwarg name
        hold = services.legal_hold_release(actor=self.actor, hold=self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=hold.pk)).data)


# --- deletion requests ---


class DeletionApprovalSerializer(serializers.ModelSerializer[DeletionApproval]):
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = DeletionApproval
        fields = ("decided_by", "decision", "comment", "decided_at")
        read_only_fields = fields


class DeletionRequestSerializer(serializers.ModelSerializer[DeletionRequest]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = VisibleRelatedField(Client)
    engagement = VisibleRelatedField(Engagement, required=False, allow_null=True)
    dataset = VisibleRelatedField(Dataset, required=False, allow_null=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    approvals = DeletionApprovalSerializer(many=True, read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    plan = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = DeletionRequest
        fields = (
            "id",
            "client",
            "engagement",
            "dataset",
            "scope",
            "reason",
            "state",
            "requested_by",
            "created_at",
            "approvals_required",
            "approvals",
            "decided_at",
            "plan",
            "plan_computed_at",
            "started_at",
            "versions_total",
            "versions_deleted",
            "progress_percent",
            "keys_destroyed_at",
            "executed_at",
            "verified_at",
            "verification",
            "follow_up_at",
            "error",
            "certificate",
        )
        read_only_fields = tuple(
            f for f in fields if f not in ("client", "engagement", "dataset", "reason")
        )

    def get_plan(self, obj: DeletionRequest) -> dict[str, Any]:
        """The plan without internal ids."""
        plan = dict(obj.plan)
        plan["datasets"] = [
            {k: v for k, v in d.items() if k != "pk"} for d in plan.get("datasets", [])
        ]
        plan["locations"] = [
            {k: v for k, v in e.items() if k != "location_pk"} for e in plan.get("locations", [])
        ]
        return plan

    def get_certificate(self, obj: DeletionRequest) -> str | None:
        certificate = getattr(obj, "certificate", None)
        return str(certificate.public_id) if certificate is not None else None


class DeletionDecisionSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True)


# The envelope `certificate_file_bytes` serves; the document inside is described by its own
# `type` (agencyops.deletion-certificate/v1).
CERTIFICATE_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "certificate": {
            "type": "object",
            "additionalProperties": True,
            "description": "What was deleted, where, how, when, who approved it and what the "
            "verification listing found.",
        },
        "sha256": {
            "type": "string",
            "description": "sha256 (hex) of the certificate's canonical JSON.",
        },
        "signature": {
            "type": "string",
            "description": "Ed25519 signature (base64) of the certificate's canonical JSON.",
        },
        "algorithm": {"type": "string", "enum": ["Ed25519"]},
        "public_key": {
            "type": "string",
            "description": "The signing key (raw, base64). Compare it with the key published "
            "at /api/v1/signing-key/: only that key proves who signed.",
        },
    },
    "required": ["certificate", "sha256", "signature", "algorithm", "public_key"],
    "additionalProperties": False,
}


class DeletionRequestViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TenantViewSet[DeletionRequest],
):
    """Deletion requests with their plan and progress. Leads with `manage` and admins request;
    an owner or admin who did not request it approves or rejects; the certificate follows
    verification."""

    serializer_class = DeletionRequestSerializer
    selector = staticmethod(selectors.deletion_request_list)
    # A procurement token reads its client's certificates, and nothing else here.
    procurement_actions = frozenset({"certificate"})

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.deletion_request_create(actor=self.actor, **serializer.validated_data)
        fresh = self.get_queryset().get(pk=created.pk)
        return Response(self.get_serializer(fresh).data, status=201)

    def _decide(self, request: Request, decide: Any) -> Response:
        target = self.get_object()
        body = DeletionDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = decide(
            actor=self.actor, request=target, comment=body.validated_data.get("comment", "")
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=done.pk)).data)

    @extend_schema(request=DeletionDecisionSerializer, responses=DeletionRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, id: str) -> Response:  # URL kwarg name
        return self._decide(request, services.deletion_request_approve)

    @extend_schema(request=DeletionDecisionSerializer, responses=DeletionRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, id: str) -> Response:  # URL kwarg name
        return self._decide(request, services.deletion_request_reject)

    def get_renderers(self) -> builtins.list[renderers.BaseRenderer]:
        if self.action == "certificate":
            return [CanonicalJSONRenderer()]
        return super().get_renderers()

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                response=CERTIFICATE_FILE_SCHEMA,
                description="The certificate file: the canonical JSON of the envelope (sorted "
                "keys, no whitespace, UTF-8) and a newline. Save the body unchanged and "
                "`manage.py verify_certificate FILE --key-url https://<host>/api/v1/signing-key/` "
                "checks it offline against the published key.",
            )
        },
    )
    @action(detail=True, methods=["get"])
    def certificate(self, request: Request, id: str) -> HttpResponse:  # URL kwarg name
        """The signed certificate, byte for byte the file `manage.py verify_certificate`
        checks: a saved response verifies as it is."""
        target = self.get_object()
        certificate = getattr(target, "certificate", None)
        if certificate is None:
            raise NotFound("No certificate yet: it is issued once the deletion is verified.")
        response = HttpResponse(
            services.certificate_file_bytes(certificate), content_type="application/json"
        )
        response["Content-Disposition"] = (
            f'inline; filename="deletion-certificate-{certificate.public_id}.json"'
        )
        return response


class SigningKeySerializer(serializers.Serializer[Any]):
    organization = serializers.CharField()
    algorithm = serializers.CharField()
    public_key = serializers.CharField()


class SigningKeyViewSet(TenantViewSet[Any]):
    """`GET /api/v1/signing-key/`: the organization's Ed25519 public key (raw, base64), the
    key a reviewer pins to verify certificates and evidence. Every member reads it, and the
    organization's procurement tokens (each read one `token_used` access event)."""

    # A procurement token's reviewer must be able to fetch the key they pin.
    procurement_actions = frozenset({"list"})
    serializer_class = SigningKeySerializer
    pagination_class = None  # one key, not a page of them
    schema = OneDocumentSchema()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return SigningKey.objects.none()
        return SigningKey.objects.visible_to(self.actor)

    @extend_schema(responses=SigningKeySerializer)
    def list(self, request: Request) -> Response:
        key = services.signing_key_ensure(self.actor.organization)
        return Response(
            {
                "organization": str(self.actor.organization.public_id),
                "algorithm": "Ed25519",
                "public_key": key.public_key,
            }
        )


# --- procurement evidence ---

CLIENT_ID = OpenApiParameter(
    "client_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The client's id."
)


class CanonicalJSONRenderer(renderers.BaseRenderer):
    """JSON with sorted keys, no whitespace, UTF-8, and a newline: the exact bytes
    `manage.py verify_evidence` checks, so a saved response verifies as it is."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return b"" if data is None else services.canonical_json(data) + b"\n"


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
                actor=self.actor, client=client, data=body.validated_data
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
