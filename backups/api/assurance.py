"""Assurance API: 3-2-1 status per dataset, the cost estimate, the storage price table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from backups import selectors as backups_selectors
from backups.models import Snapshot, StorageClass, StoragePrice
from backups.services.assurance import ProtectionStatus, protection_status_many
from backups.services.cost import (
    CostLine,
    CostReport,
    EffectivePrice,
    PriceChange,
    cents,
    cost_estimate,
    cost_series,
    storage_price_list,
    storage_prices_set,
)
from clients import selectors as clients_selectors
from clients.models import Dataset, Provider
from kernel.api import AdminWrites, OneDocumentSchema, TenantViewSet
from kernel.tenancy import Actor

# --- protection status (3-2-1) ---


@dataclass(frozen=True)
class _ProtectionRow:
    dataset: Dataset
    status: ProtectionStatus


class RuleSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(read_only=True)
    met = serializers.BooleanField(read_only=True)
    reason = serializers.CharField(read_only=True)


class TargetStatusSerializer(serializers.Serializer[Any]):
    target = serializers.UUIDField(source="location_public_id", read_only=True)
    name = serializers.CharField(source="location_name", read_only=True)
    last_snapshot_at = serializers.DateTimeField(read_only=True, allow_null=True)
    fresh = serializers.BooleanField(read_only=True)
    restorable_snapshots = serializers.IntegerField(read_only=True)


class ProtectionSerializer(serializers.Serializer[Any]):
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True)
    name = serializers.CharField(source="dataset.name", read_only=True)
    client = serializers.UUIDField(source="dataset.client.public_id", read_only=True)
    lifecycle_state = serializers.CharField(source="dataset.lifecycle_state", read_only=True)
    copies = serializers.IntegerField(source="status.copies", read_only=True)
    media = serializers.IntegerField(source="status.media", read_only=True)
    offsite = serializers.BooleanField(source="status.offsite", read_only=True)
    history = serializers.BooleanField(source="status.history", read_only=True)
    met = serializers.BooleanField(source="status.met", read_only=True)
    rpo_met = serializers.BooleanField(source="status.rpo_met", read_only=True)
    retired = serializers.BooleanField(
        source="status.retired",
        read_only=True,
        help_text="Deleted or pending deletion: reported, never counted as failing.",
    )
    last_good_at = serializers.DateTimeField(
        source="status.last_good_at", read_only=True, allow_null=True
    )
    reasons = serializers.ListField(
        source="status.reasons", child=serializers.CharField(), read_only=True
    )
    rules = RuleSerializer(source="status.rules", many=True, read_only=True)
    targets = TargetStatusSerializer(source="status.targets", many=True, read_only=True)


class ProtectionFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id")
    dataset = django_filters.UUIDFilter(field_name="public_id")

    class Meta:
        model = Dataset
        fields = ("client", "dataset")


class ProtectionQuerySerializer(serializers.Serializer[Any]):
    met = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Only datasets that meet 3-2-1 (true) or fail it (false).",
    )


class _ComputedViewSet(TenantViewSet[Any]):
    """A view whose answer is computed, not a serialized model: the schema generator is given
    the model it reads (`schema_model`) instead of guessing one from the serializer."""

    schema_model: ClassVar[type[models.Model]]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.schema_model._default_manager.none()
        return super().get_queryset()


class ProtectionViewSet(mixins.ListModelMixin, _ComputedViewSet):
    """3-2-1 per dataset, computed now from the snapshots on each target (see
    backups.services.assurance). Scoped like datasets: a lead sees granted clients only."""

    serializer_class = ProtectionSerializer
    selector = staticmethod(clients_selectors.dataset_list)
    schema_model = Dataset
    filterset_class = ProtectionFilter

    @extend_schema(parameters=[ProtectionQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = ProtectionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        met: bool | None = query.validated_data.get("met")
        now = timezone.now()
        datasets = self.filter_queryset(self.get_queryset())
        if met is None:
            page = list(self.paginate_queryset(datasets) or [])
            statuses = protection_status_many(page, now=now)
        else:
            # Met is computed, not stored: evaluate every filtered dataset, then page the answer.
            everything = list(datasets)
            statuses = protection_status_many(everything, now=now)
            matching = [d for d in everything if statuses[d.pk].met is met]
            page = list(self.paginate_queryset(matching) or [])  # type: ignore[arg-type]  # a list pages like a queryset
        rows = [_ProtectionRow(dataset, statuses[dataset.pk]) for dataset in page]
        return self.get_paginated_response(ProtectionSerializer(rows, many=True).data)


# --- cost ---


class CostLineSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True, help_text="Public id, or the storage class.")
    name = serializers.CharField(read_only=True)
    bytes = serializers.IntegerField(read_only=True)
    usd = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)


class MonthCostSerializer(serializers.Serializer[Any]):
    month = serializers.DateField(read_only=True)
    bytes_by_tier = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)


class CostSerializer(serializers.Serializer[Any]):
    month = serializers.DateField(read_only=True)
    currency = serializers.CharField(read_only=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    total_bytes = serializers.IntegerField(read_only=True)
    by_client = CostLineSerializer(many=True, read_only=True)
    by_target = CostLineSerializer(many=True, read_only=True)
    by_tier = CostLineSerializer(many=True, read_only=True)
    retrieval = CostLineSerializer(
        read_only=True,
        help_text="Reading archived content back for the month's drills (bytes retrieved); "
        "counted in total.",
    )
    series = MonthCostSerializer(many=True, read_only=True)


class CostQuerySerializer(serializers.Serializer[Any]):
    client = serializers.UUIDField(required=False, help_text="Only this client's datasets.")
    months = serializers.IntegerField(
        required=False, default=12, min_value=1, max_value=36, help_text="Months in the series."
    )


def _lines(report: CostReport, lines: list[CostLine]) -> list[dict[str, Any]]:
    return [
        {
            "id": line.key,
            "name": report.names.get(line.key, line.key),
            "bytes": line.bytes,
            "usd": cents(line.usd),
        }
        for line in lines
    ]


class CostViewSet(_ComputedViewSet):
    """This month's storage cost estimate by client, target and storage class, and the last
    months' series (bytes stored at each month's end at today's prices). Covers the datasets
    the caller may see."""

    serializer_class = CostSerializer
    selector = staticmethod(backups_selectors.snapshot_list)
    schema_model = Snapshot
    schema = OneDocumentSchema()  # one report, not a page

    @extend_schema(parameters=[CostQuerySerializer], responses=CostSerializer)
    def list(self, request: Request) -> Response:
        query = CostQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        client_id = query.validated_data.get("client")
        client = (
            clients_selectors.client_get(actor=self.actor, public_id=client_id)
            if client_id is not None
            else None
        )
        now = timezone.now()
        report = cost_estimate(actor=self.actor, client=client, now=now)
        series = cost_series(
            actor=self.actor, months=query.validated_data["months"], client=client, now=now
        )
        body = {
            "month": report.month,
            "currency": report.currency,
            "total": cents(report.total),
            "total_bytes": report.total_bytes,
            "by_client": _lines(report, report.by_client),
            "by_target": _lines(report, report.by_target),
            "by_tier": _lines(report, report.by_tier),
            "retrieval": _lines(report, [report.retrieval])[0],
            "series": [
                {"month": m.month, "bytes_by_tier": m.bytes_by_tier, "total": cents(m.total)}
                for m in series
            ],
        }
        return Response(CostSerializer(body).data)


# --- storage prices ---

MAX_PRICES = 200


def _price_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(value.normalize(), "f") if value else "0"


class PriceSerializer(serializers.Serializer[Any]):
    id = serializers.SerializerMethodField(help_text="The override's id; null for a list price.")
    provider = serializers.CharField(read_only=True)
    storage_class = serializers.CharField(read_only=True)
    usd_per_gb_month = serializers.SerializerMethodField()
    default_usd_per_gb_month = serializers.SerializerMethodField()
    overridden = serializers.SerializerMethodField()

    def get_id(self, price: EffectivePrice) -> str | None:
        return str(price.override.public_id) if price.override is not None else None

    def get_usd_per_gb_month(self, price: EffectivePrice) -> str | None:
        return _price_text(price.usd_per_gb_month)

    def get_default_usd_per_gb_month(self, price: EffectivePrice) -> str | None:
        return _price_text(price.default_usd_per_gb_month)

    def get_overridden(self, price: EffectivePrice) -> bool:
        return price.override is not None


class PriceWriteSerializer(serializers.Serializer[Any]):
    provider = serializers.ChoiceField(choices=Provider.choices)
    storage_class = serializers.ChoiceField(choices=StorageClass.choices)
    usd_per_gb_month = serializers.DecimalField(
        max_digits=10,
        decimal_places=6,
        min_value=Decimal(0),
        allow_null=True,
        help_text="USD per GB-month; null removes the override (back to the list price).",
    )


class PriceTableSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField(read_only=True)
    prices = PriceSerializer(many=True, read_only=True)


class PriceTableWriteSerializer(serializers.Serializer[Any]):
    prices = PriceWriteSerializer(many=True, allow_empty=True)

    def validate_prices(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > MAX_PRICES:
            raise serializers.ValidationError(f"At most {MAX_PRICES} prices at once.")
        return value


def _price_overrides(*, actor: Actor) -> Any:
    return StoragePrice.objects.visible_to(actor)


class StoragePriceViewSet(_ComputedViewSet):
    """The organization's effective price table. Everyone reads it; admins write overrides:
    PUT replaces them all with the list given, PATCH changes only the entries given."""

    serializer_class = PriceSerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(_price_overrides)
    schema_model = StoragePrice
    schema = OneDocumentSchema()  # the whole table, not a page

    def _table(self) -> Response:
        prices = storage_price_list(actor=self.actor)
        return Response({"currency": "USD", "prices": PriceSerializer(prices, many=True).data})

    def _write(self, request: Request, *, replace: bool) -> Response:
        body = PriceTableWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = [
            PriceChange(p["provider"], p["storage_class"], p["usd_per_gb_month"])
            for p in body.validated_data["prices"]
        ]
        storage_prices_set(actor=self.actor, changes=changes, replace=replace)
        return self._table()

    @extend_schema(responses=PriceTableSerializer)
    def list(self, request: Request) -> Response:
        return self._table()

    @extend_schema(request=PriceTableWriteSerializer, responses=PriceTableSerializer)
    def update(self, request: Request) -> Response:
        return self._write(request, replace=True)

    @extend_schema(request=PriceTableWriteSerializer, responses=PriceTableSerializer)
    def partial_update(self, request: Request) -> Response:
        return self._write(request, replace=False)
