"""What the backups cost: bytes stored per target and storage class, times a price table.

Bytes stored by a (dataset, target) pair are estimated as the sum of `new_bytes` of its
restorable snapshots: the unique chunk bytes each snapshot wrote to that target. Chunks a
forgotten snapshot wrote but a later one still references are not counted, so the figure is a
floor, close to the real one when pruning collected what it forgot.

Each snapshot's bytes sit in one storage class, from the dataset's current policy tiering on S3
targets: `storage_class`, then STANDARD_IA once older than `infrequent_access_after_days`, then
GLACIER_IR once older than `archive_after_days` (never warmer than the policy's class). Ages are
whole UTC days, the way S3 lifecycle rules count: an object of day D moves at midnight UTC
after D + N days. Local directories have one class, STANDARD.

Prices are USD per GB-month (GB = 2**30 bytes, as AWS bills): the organization's StoragePrice
rows, else the AGENCYOPS_STORAGE_PRICES setting; a class a provider does not list costs what its
STANDARD class costs. A month's estimate is what the bytes stored now cost for a month, plus
what the month's restore drills pay to read archived content back (retrieval_cost.py), shown as
its own line and counted in the client and target totals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from backups.models import Snapshot, StorageClass, StoragePrice
from backups.services.retrieval_cost import RETRIEVAL_KEY, RETRIEVAL_NAME, retrieval_shares
from clients.models import Client, LocationKind, Organization, Provider
from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor

CURRENCY = "USD"
BYTES_PER_GB = 1024**3
CENT = Decimal("0.01")
# Colder to the right: tiering never moves data to a warmer class.
TIER_ORDER: tuple[str, ...] = (
    StorageClass.STANDARD,
    StorageClass.STANDARD_IA,
    StorageClass.GLACIER_IR,
    StorageClass.GLACIER,
    StorageClass.DEEP_ARCHIVE,
)


class CostLine(NamedTuple):
    """One row of a breakdown: a client's or target's public id, or a storage class."""

    key: str
    bytes: int
    usd: Decimal


@dataclass(frozen=True)
class CostReport:
    month: date  # the first day of the month the estimate is for
    currency: str
    total: Decimal
    by_client: list[CostLine]
    by_target: list[CostLine]
    by_tier: list[CostLine]
    total_bytes: int = 0
    # key of a line -> what a person calls it (client name, target name, class label)
    names: dict[str, str] = field(default_factory=dict)
    # Reading archived content back for the month's drills (bytes retrieved, not stored).
    retrieval: CostLine = field(default_factory=lambda: CostLine(RETRIEVAL_KEY, 0, Decimal(0)))


@dataclass(frozen=True)
class MonthCost:
    month: date
    bytes_by_tier: dict[str, int]
    total: Decimal


@dataclass(frozen=True)
class EffectivePrice:
    provider: str
    storage_class: str
    usd_per_gb_month: Decimal
    default_usd_per_gb_month: Decimal | None
    override: StoragePrice | None  # the organization's row, when it sets this price


def cents(value: Decimal) -> Decimal:
    """Rounded for display (half up, like an invoice)."""
    return value.quantize(CENT, rounding="ROUND_HALF_UP")


# --- prices ---


def _default_prices() -> dict[tuple[str, str], Decimal]:
    table: Mapping[str, Mapping[str, Any]] = settings.AGENCYOPS_STORAGE_PRICES
    return {
        (provider, storage_class): Decimal(str(price))
        for provider, classes in table.items()
        for storage_class, price in classes.items()
    }


class PriceTable:
    """The effective price of every (provider, class) for one organization."""

    def __init__(
        self, defaults: Mapping[tuple[str, str], Decimal], overrides: Iterable[StoragePrice]
    ):
        self.defaults = dict(defaults)
        self.overrides = {(row.provider, row.storage_class): row for row in overrides}

    def _exact(self, provider: str, storage_class: str) -> Decimal | None:
        row = self.overrides.get((provider, storage_class))
        if row is not None:
            return Decimal(row.usd_per_gb_month)
        return self.defaults.get((provider, storage_class))

    def price(self, provider: str, storage_class: str) -> Decimal:
        exact = self._exact(provider, storage_class)
        if exact is None:
            exact = self._exact(provider, StorageClass.STANDARD)
        return exact if exact is not None else Decimal(0)

    def entries(self) -> list[EffectivePrice]:
        keys = sorted(set(self.defaults) | set(self.overrides))
        return [
            EffectivePrice(
                provider=provider,
                storage_class=storage_class,
                usd_per_gb_month=self.price(provider, storage_class),
                default_usd_per_gb_month=self.defaults.get((provider, storage_class)),
                override=self.overrides.get((provider, storage_class)),
            )
            for provider, storage_class in keys
        ]


def price_table(organization: Organization | int) -> PriceTable:
    """The organization's prices: its overrides (one query) over the setting's list prices."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    overrides = StoragePrice.objects.filter(organization_id=organization_id)
    return PriceTable(_default_prices(), overrides)


def storage_price_list(*, actor: Actor) -> list[EffectivePrice]:
    """Every member reads the organization's effective price table."""
    return price_table(actor.organization_id).entries()


class PriceChange(NamedTuple):
    provider: str
    storage_class: str
    usd_per_gb_month: Decimal | None  # None: drop the override, back to the list price


@transaction.atomic
def storage_prices_set(
    *, actor: Actor, changes: Sequence[PriceChange], replace: bool = False
) -> list[EffectivePrice]:
    """Set the organization's own prices (admins). `replace` drops every override the changes
    do not name; a change without a price drops that override. Prices are never negative."""
    actor.require_admin("change storage prices")
    errors: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for index, change in enumerate(changes):
        key = (change.provider, change.storage_class)
        if change.provider not in Provider.values:
            errors[f"prices.{index}.provider"] = f"Unknown provider {change.provider!r}."
        if change.storage_class not in StorageClass.values:
            errors[f"prices.{index}.storage_class"] = (
                f"Unknown storage class {change.storage_class!r}."
            )
        if change.usd_per_gb_month is not None and change.usd_per_gb_month < 0:
            errors[f"prices.{index}.usd_per_gb_month"] = "A price cannot be negative."
        if key in seen:
            errors[f"prices.{index}"] = "This provider and class appear twice."
        seen.add(key)
    if errors:
        raise ValidationFailed("Invalid prices.", fields=errors)
    rows = {
        (row.provider, row.storage_class): row
        for row in StoragePrice.objects.select_for_update().filter(
            organization_id=actor.organization_id
        )
    }
    if replace:
        dropped = [row.pk for key, row in rows.items() if key not in seen]
        StoragePrice.objects.filter(pk__in=dropped).delete()
    for change in changes:
        row = rows.get((change.provider, change.storage_class))
        if change.usd_per_gb_month is None:
            if row is not None:
                row.delete()
            continue
        if row is None:
            row = StoragePrice(
                organization_id=actor.organization_id,
                provider=change.provider,
                storage_class=change.storage_class,
            )
        row.usd_per_gb_month = change.usd_per_gb_month
        row.full_clean()
        row.save()
    return storage_price_list(actor=actor)


# --- bytes and tiers ---


@dataclass(frozen=True)
class Tiering:
    storage_class: str
    infrequent_access_after_days: int | None
    archive_after_days: int | None


def tier_on(
    *,
    kind: str,
    tiering: Tiering,
    taken_on: date,
    on: date,
) -> str:
    """The storage class a snapshot of day `taken_on` sits in on day `on`."""
    if kind == LocationKind.LOCAL:
        return StorageClass.STANDARD
    start = tiering.storage_class or StorageClass.STANDARD
    age = (on - taken_on).days
    tier = start
    if (
        tiering.infrequent_access_after_days is not None
        and age > tiering.infrequent_access_after_days
    ):
        tier = StorageClass.STANDARD_IA
    if tiering.archive_after_days is not None and age > tiering.archive_after_days:
        tier = StorageClass.GLACIER_IR
    return max(start, tier, key=_coldness)


def _coldness(storage_class: str) -> int:
    return TIER_ORDER.index(storage_class) if storage_class in TIER_ORDER else 0


_GROUP = (
    "dataset__client_id",
    "dataset__client__public_id",
    "dataset__client__name",
    "location_id",
    "location__public_id",
    "location__name",
    "location__provider",
    "location__kind",
    "dataset__protection__policy__storage_class",
    "dataset__protection__policy__infrequent_access_after_days",
    "dataset__protection__policy__archive_after_days",
    "taken_on",
)


def _visible_snapshots(actor: Actor, client: Client | None) -> Any:
    qs = Snapshot.objects.visible_to(actor)
    if client is not None:
        qs = qs.filter(dataset__client_id=client.pk)
    return qs


def _tiering(row: Mapping[str, Any]) -> Tiering:
    return Tiering(
        storage_class=row["dataset__protection__policy__storage_class"] or StorageClass.STANDARD,
        infrequent_access_after_days=row[
            "dataset__protection__policy__infrequent_access_after_days"
        ],
        archive_after_days=row["dataset__protection__policy__archive_after_days"],
    )


def _gb_cost(stored: int, price: Decimal) -> Decimal:
    return Decimal(stored) * price / BYTES_PER_GB


def _stored_at_now(actor: Actor, client: Client | None, now: datetime) -> list[dict[str, Any]]:
    """Restorable snapshots at `now`, summed per dataset, target, tiering and day taken, with
    the day's largest snapshot and the drill period (what the retrieval line needs)."""
    alive = Q(forgotten_at__isnull=True) | Q(forgotten_at__gt=now)
    return list(
        _visible_snapshots(actor, client)
        .filter(alive, taken_at__lte=now)
        .annotate(taken_on=TruncDate("taken_at", tzinfo=UTC))
        .values(*_GROUP, "dataset_id", "dataset__protection__policy__drill_every")
        .annotate(stored=Sum("new_bytes"), largest=Max("bytes"))
        .order_by()
    )


def _month_start(moment: datetime) -> date:
    return moment.date().replace(day=1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def cost_estimate(
    *, actor: Actor, client: Client | None = None, now: datetime | None = None
) -> CostReport:
    """This month's estimate of what the backups the actor may see cost, by client, target and
    storage class (two queries)."""
    now = now or timezone.now()
    return _estimate(actor, client, now, price_table(actor.organization_id))


def _estimate(actor: Actor, client: Client | None, now: datetime, prices: PriceTable) -> CostReport:
    today = now.astimezone(UTC).date()
    totals: dict[str, dict[str, list[Any]]] = {
        "client": defaultdict(lambda: [0, Decimal(0)]),
        "target": defaultdict(lambda: [0, Decimal(0)]),
        "tier": defaultdict(lambda: [0, Decimal(0)]),
    }
    names: dict[str, str] = {}
    rows = _stored_at_now(actor, client, now)
    for row in rows:
        stored = int(row["stored"] or 0)
        tier = tier_on(
            kind=row["location__kind"], tiering=_tiering(row), taken_on=row["taken_on"], on=today
        )
        usd = _gb_cost(stored, prices.price(row["location__provider"], tier))
        client_key = str(row["dataset__client__public_id"])
        target_key = str(row["location__public_id"])
        names[client_key] = row["dataset__client__name"]
        names[target_key] = row["location__name"]
        names[tier] = str(StorageClass(tier).label) if tier in StorageClass.values else tier
        for group, key in (("client", client_key), ("target", target_key), ("tier", tier)):
            totals[group][key][0] += stored
            totals[group][key][1] += usd

    retrieval = CostLine(RETRIEVAL_KEY, 0, Decimal(0))
    for share in retrieval_shares(rows):
        names[share.client_key] = share.client_name
        names[share.target_key] = share.target_name
        for group, key in (("client", share.client_key), ("target", share.target_key)):
            totals[group][key][1] += share.usd
        retrieval = CostLine(
            RETRIEVAL_KEY, retrieval.bytes + share.bytes, retrieval.usd + share.usd
        )
    names[RETRIEVAL_KEY] = RETRIEVAL_NAME

    def lines(group: str) -> list[CostLine]:
        found = [CostLine(key, int(b), usd) for key, (b, usd) in totals[group].items()]
        return sorted(found, key=lambda line: (-line.usd, -line.bytes, names.get(line.key, "")))

    by_tier = lines("tier")
    return CostReport(
        month=_month_start(now.astimezone(UTC)),
        currency=CURRENCY,
        total=sum((line.usd for line in by_tier), retrieval.usd),
        by_client=lines("client"),
        by_target=lines("target"),
        by_tier=by_tier,
        total_bytes=sum(line.bytes for line in by_tier),
        names=names,
        retrieval=retrieval,
    )


def cost_series(
    *, actor: Actor, months: int = 12, client: Client | None = None, now: datetime | None = None
) -> list[MonthCost]:
    """Month by month, oldest first, the last `months` months (this one included): the bytes
    stored at each month's end (at `now` for this month) and what they cost a month, at today's
    prices. Three queries whatever the number of months."""
    if months < 1:
        raise ValidationFailed("Ask for at least one month.", fields={"months": "At least 1."})
    now = now or timezone.now()
    prices = price_table(actor.organization_id)
    current = _month_start(now.astimezone(UTC))
    first = _add_months(current, -(months - 1))
    # Past points: midnight UTC starting the next month.
    ends = {
        month: datetime.combine(_add_months(month, 1), time(0), tzinfo=UTC)
        for month in (_add_months(first, i) for i in range(months - 1))
    }
    points: dict[date, tuple[dict[str, int], Decimal]] = {}
    if ends:
        start = min(ends.values())
        alive_from_start = Q(forgotten_at__isnull=True) | Q(forgotten_at__gt=start)
        rows = list(
            _visible_snapshots(actor, client)
            .filter(alive_from_start, taken_at__lt=max(ends.values()))
            .annotate(
                taken_on=TruncDate("taken_at", tzinfo=UTC),
                forgotten_on=TruncDate("forgotten_at", tzinfo=UTC),
            )
            .values(*_GROUP, "forgotten_on")
            .annotate(stored=Sum("new_bytes"))
            .order_by()
        )
        for month, end in ends.items():
            day = end.date()
            by_tier: dict[str, int] = defaultdict(int)
            total = Decimal(0)
            for row in rows:
                forgotten_on = row["forgotten_on"]
                if row["taken_on"] >= day or (forgotten_on is not None and forgotten_on < day):
                    continue
                stored = int(row["stored"] or 0)
                tier = tier_on(
                    kind=row["location__kind"],
                    tiering=_tiering(row),
                    taken_on=row["taken_on"],
                    on=day,
                )
                by_tier[tier] += stored
                total += _gb_cost(stored, prices.price(row["location__provider"], tier))
            points[month] = (dict(by_tier), total)
    estimate = _estimate(actor, client, now, prices)
    points[current] = ({line.key: line.bytes for line in estimate.by_tier}, estimate.total)
    return [
        MonthCost(month=month, bytes_by_tier=points[month][0], total=points[month][1])
        for month in sorted(points)
    ]
