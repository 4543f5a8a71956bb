"""The access log's API: the events (filtered, newest first), their CSV export, and the
verification of the organization's whole chain."""

from __future__ import annotations

import builtins
import csv
import json
from collections.abc import Iterator, Mapping
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.api import TenantViewSet
from kernel.exceptions import Forbidden
from kernel.filters import UtcDateTimeFilter
from lifecycle import selectors, services
from lifecycle.models import AccessAction, AccessEvent


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
    since = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

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
