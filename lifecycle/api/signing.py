"""What signed documents share: the canonical JSON renderer (certificates, evidence) and the
organization's public signing key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.api import OneDocumentSchema, TenantViewSet
from lifecycle import services
from lifecycle.models import SigningKey


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
