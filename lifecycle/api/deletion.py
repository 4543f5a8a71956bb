"""Deletion requests: their plan and progress, the decisions, and the signed certificate."""

from __future__ import annotations

import builtins
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients.models import Client, Dataset, Engagement
from kernel.api import TenantViewSet, VisibleRelatedField
from kernel.exceptions import NotFound
from lifecycle import selectors, services
from lifecycle.api.signing import CanonicalJSONRenderer
from lifecycle.models import DeletionApproval, DeletionRequest


class DeletionApprovalSerializer(serializers.ModelSerializer[DeletionApproval]):
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = DeletionApproval
        fields = ("decided_by", "decision", "comment", "primary_drop_confirmed", "decided_at")
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
            "drop_primary_databases",
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
            f
            for f in fields
            if f not in ("client", "engagement", "dataset", "reason", "drop_primary_databases")
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
    confirm_primary_drop = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Approving a request that drops the client's own databases: confirm it.",
    )


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
        extra = {}
        if decide is services.deletion_request_approve:
            extra["confirm_primary_drop"] = body.validated_data.get("confirm_primary_drop", False)
        done = decide(
            actor=self.actor,
            request=target,
            comment=body.validated_data.get("comment", ""),
            **extra,
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
