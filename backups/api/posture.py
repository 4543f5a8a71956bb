"""Bucket posture API: audits with their findings (read like the locations they are about),
audit now, and the admins' fixes.

`POST /posture-audits/` audits synchronously inside the request: the bucket-settings client
uses short timeouts and one retry, so even an unreachable endpoint answers within seconds, and
the caller gets the fresh findings at once. `POST /posture-fixes/` applies the change, records
it (also when the storage service refuses it: `succeeded` false, `error` set) and returns it
with the audit taken right after.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from backups import selectors
from backups.models import (
    AuditTrigger,
    BackupPolicy,
    FixAction,
    PostureAudit,
    PostureFinding,
    PostureFix,
)
from backups.services import posture as posture_service
from clients.models import StorageLocation
from kernel.api import AdminWrites, TenantViewSet, VisibleRelatedField


class PostureFindingSerializer(serializers.ModelSerializer[PostureFinding]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    check = serializers.CharField(source="check_name", read_only=True)
    check_label = serializers.CharField(source="get_check_name_display", read_only=True)
    fix_action = serializers.SerializerMethodField(
        help_text="The fix an admin can apply (POST /posture-fixes/), or null."
    )

    class Meta:
        model = PostureFinding
        fields = ("id", "check", "check_label", "severity", "message", "fix_action")
        read_only_fields = fields

    def get_fix_action(self, finding: PostureFinding) -> str | None:
        return finding.fix_action or None


class PostureAuditSerializer(serializers.ModelSerializer[PostureAudit]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    location = serializers.UUIDField(source="location.public_id", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    findings = PostureFindingSerializer(many=True, read_only=True)

    class Meta:
        model = PostureAudit
        fields = (
            "id",
            "location",
            "location_name",
            "audited_at",
            "trigger",
            "requested_by",
            "reachable",
            "error",
            "facts",
            "findings",
        )
        read_only_fields = fields


class PostureAuditRequestSerializer(serializers.Serializer[Any]):
    location = VisibleRelatedField(StorageLocation, help_text="The S3 location to audit now.")


class PostureAuditFilter(django_filters.FilterSet):
    location = django_filters.UUIDFilter(field_name="location__public_id")

    class Meta:
        model = PostureAudit
        fields = ("location", "trigger", "reachable")


class PostureAuditViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[PostureAudit]
):
    """Posture audits, newest first, with their findings worst first; `?location=` narrows to
    one location. Admins POST `{"location": id}` to audit now (synchronously)."""

    serializer_class = PostureAuditSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.posture_audit_list)
    filterset_class = PostureAuditFilter

    @extend_schema(request=PostureAuditRequestSerializer, responses={201: PostureAuditSerializer})
    def create(self, request: Request) -> Response:
        body = PostureAuditRequestSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        body.is_valid(raise_exception=True)
        audit = posture_service.location_audit(
            body.validated_data["location"], trigger=AuditTrigger.MANUAL, actor=self.actor
        )
        fresh = selectors.posture_audit_get(actor=self.actor, public_id=audit.public_id)
        return Response(PostureAuditSerializer(fresh).data, status=status.HTTP_201_CREATED)


class PostureFixSerializer(serializers.ModelSerializer[PostureFix]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    location = serializers.UUIDField(source="location.public_id", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = PostureFix
        fields: tuple[str, ...] = (
            "id",
            "location",
            "location_name",
            "action",
            "requested_by",
            "created_at",
            "succeeded",
            "error",
            "details",
        )
        read_only_fields = fields


class PostureFixResultSerializer(PostureFixSerializer):
    """A fix just applied, with the audit taken right after it."""

    audit = serializers.SerializerMethodField()

    class Meta(PostureFixSerializer.Meta):
        fields = (*PostureFixSerializer.Meta.fields, "audit")
        read_only_fields = fields

    @extend_schema_field(PostureAuditSerializer(allow_null=True))
    def get_audit(self, fix: PostureFix) -> dict[str, Any] | None:
        audit = self.context.get("audit")
        return dict(PostureAuditSerializer(audit).data) if audit is not None else None


class PostureFixRequestSerializer(serializers.Serializer[Any]):
    location = VisibleRelatedField(StorageLocation, help_text="The S3 location to fix.")
    action = serializers.ChoiceField(choices=FixAction.choices)
    log_prefix = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=512,
        help_text="enable_logging: key prefix under the location's prefix (default _logs).",
    )
    log_bucket = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=63,
        help_text="enable_logging: deliver to this bucket instead of the location's own.",
    )
    policy = VisibleRelatedField(
        BackupPolicy,
        required=False,
        help_text="apply_lifecycle: the policy whose tiering to apply (default: the first "
        "policy targeting the location, else the daily default).",
    )


class PostureFixViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[PostureFix]
):
    """Changes admins made to buckets' protection settings, kept whether they worked or not."""

    serializer_class = PostureFixSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.posture_fix_list)

    @extend_schema(request=PostureFixRequestSerializer, responses={201: PostureFixResultSerializer})
    def create(self, request: Request) -> Response:
        body = PostureFixRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        location: StorageLocation = data["location"]
        fix = posture_service.posture_fix_apply(
            actor=self.actor,
            location=location,
            action=data["action"],
            log_prefix=data.get("log_prefix") or None,
            log_bucket=data.get("log_bucket") or None,
            policy=data.get("policy"),
        )
        fresh = selectors.posture_fix_list(actor=self.actor).get(pk=fix.pk)
        audit = selectors.latest_audits([location.pk]).get(location.pk)
        answer = PostureFixResultSerializer(fresh, context={"audit": audit})
        return Response(answer.data, status=status.HTTP_201_CREATED)
