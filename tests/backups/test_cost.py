"""Cost estimate: bytes stored (new_bytes of restorable snapshots) by tier * the price table.

Every expected figure below is computed by hand in the comments: GB = 2**30 bytes, AWS list
prices STANDARD 0.023, STANDARD_IA 0.0125, GLACIER_IR 0.004; local disks cost 0; the
organization overrides Wasabi's 0.0069 with 0.0059.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from backups.models import Snapshot, StoragePrice
from backups.services.cost import (
    PriceChange,
    Tiering,
    cents,
    cost_estimate,
    cost_series,
    storage_price_list,
    storage_prices_set,
    tier_on,
)
from backups.services.policies import dataset_policy_set, policy_create
from clients.models import Dataset, StorageLocation
from kernel.exceptions import Forbidden, ValidationFailed
from kernel.tenancy import Actor
from tests.conftest import World
from tests.factories import LocationFactory

NOW = datetime(2031, 1, 8, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
GB = 2**30


def _snap(
    dataset: Dataset,
    location: StorageLocation,
    taken_at: datetime,
    gigabytes: int,
    forgotten_at: datetime | None = None,
) -> Snapshot:
    return Snapshot.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        location=location,
        manifest_id=f"{taken_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        taken_at=taken_at,
        new_bytes=gigabytes * GB,
        bytes=gigabytes * GB * 3,  # what the snapshot references: not what it adds
        forgotten_at=forgotten_at,
    )


@pytest.fixture
def priced(world: World) -> World:
    """Client A on Amazon S3 (tiered) and a local disk; client B on Wasabi (price override)."""
    w = world
    w.system = Actor.system(w.org)
    w.policy = policy_create(
        actor=w.system,
        name="Tiered",
        frequency="daily",
        keep_daily=30,
        infrequent_access_after_days=30,
        archive_after_days=90,
    )
    for dataset in (w.dataset, w.dataset_b):
        dataset_policy_set(actor=w.system, dataset=dataset, policy=w.policy)
    w.aws = LocationFactory(organization=w.org, name="AWS", provider="aws")
    w.disk = LocationFactory(
        organization=w.org,
        name="Disk",
        kind="local",
        provider="filesystem",
        bucket="",
        region="",
        prefix="/srv/disk",
    )
    w.wasabi = LocationFactory(organization=w.org, name="Wasabi", provider="wasabi")
    StoragePrice.objects.create(
        organization=w.org, provider="wasabi", storage_class="STANDARD", usd_per_gb_month="0.0059"
    )
    a = w.dataset
    _snap(a, w.aws, NOW - 10 * DAY, 10)  # 2030-12-29: STANDARD now
    _snap(a, w.aws, NOW - 40 * DAY, 20)  # 2030-11-29: STANDARD_IA now (40 > 30 days)
    _snap(a, w.aws, NOW - 100 * DAY, 30)  # 2030-09-30: GLACIER_IR now (100 > 90 days)
    _snap(a, w.aws, NOW - 60 * DAY, 50, forgotten_at=NOW - DAY)  # 2030-11-09, gone 2031-01-07
    _snap(a, w.aws, datetime(2030, 11, 20, 10, tzinfo=UTC), 8, forgotten_at=NOW - 24 * DAY)
    _snap(a, w.disk, NOW - 100 * DAY, 5)  # a directory has no tiers, and costs nothing
    _snap(w.dataset_b, w.wasabi, NOW - 2 * DAY, 100)  # 2031-01-06
    _snap(a, w.aws, NOW + DAY, 999)  # not yet taken at NOW
    # another organization's bytes never show up
    other = LocationFactory(organization=w.other_org, name="Theirs", provider="aws")
    _snap(w.other_dataset, other, NOW - DAY, 1000)
    return w


def test_estimate_matches_hand_computation_by_client_target_and_tier(
    priced: World, django_assert_num_queries: Any
) -> None:
    w = priced
    owner = w.actor(w.owner)
    with django_assert_num_queries(2):
        report = cost_estimate(actor=owner, now=NOW)

    # AWS: 10 GB * 0.023 + 20 GB * 0.0125 + 30 GB * 0.004 = 0.23 + 0.25 + 0.12 = 0.60
    # Wasabi: 100 GB * 0.0059 (the organization's price) = 0.59; disk: 5 GB * 0 = 0
    assert report.month == date(2031, 1, 1)
    assert report.currency == "USD"
    assert cents(report.total) == Decimal("1.19")
    assert report.total_bytes == 165 * GB

    def table(lines: Any) -> dict[str, tuple[int, Decimal]]:
        return {report.names[k]: (b // GB, cents(usd)) for k, b, usd in lines}

    assert table(report.by_client) == {
        "Client A": (65, Decimal("0.60")),
        "Client B": (100, Decimal("0.59")),
    }
    assert table(report.by_target) == {
        "AWS": (60, Decimal("0.60")),
        "Wasabi": (100, Decimal("0.59")),
        "Disk": (5, Decimal("0.00")),
    }
    assert {k: (b // GB, cents(usd)) for k, b, usd in report.by_tier} == {
        "STANDARD": (115, Decimal("0.82")),
        "STANDARD_IA": (20, Decimal("0.25")),
        "GLACIER_IR": (30, Decimal("0.12")),
    }
    assert [line.key for line in report.by_client] == [
        str(w.client.public_id),
        str(w.client_b.public_id),
    ]


def test_estimate_is_scoped_to_what_the_actor_sees_and_to_one_client(priced: World) -> None:
    w = priced
    lead = cost_estimate(actor=w.actor(w.lead), now=NOW)  # granted client A only
    assert cents(lead.total) == Decimal("0.60")
    assert [line.key for line in lead.by_client] == [str(w.client.public_id)]

    only_b = cost_estimate(actor=w.actor(w.owner), client=w.client_b, now=NOW)
    assert cents(only_b.total) == Decimal("0.59")
    assert [report_line.key for report_line in only_b.by_target] == [str(w.wasabi.public_id)]

    theirs = cost_estimate(actor=w.actor(w.other_admin), now=NOW)
    # 1000 GB * 0.023, their own only
    assert cents(theirs.total) == Decimal("23.00")


def test_an_organization_price_override_changes_only_its_own_estimate(priced: World) -> None:
    w = priced
    storage_prices_set(
        actor=w.actor(w.admin),
        changes=[PriceChange("aws", "STANDARD", Decimal("0.05"))],
    )
    # AWS STANDARD 10 GB * 0.05 = 0.50 (was 0.23): 1.19 + 0.27 = 1.46
    assert cents(cost_estimate(actor=w.actor(w.owner), now=NOW).total) == Decimal("1.46")
    # back to the list price
    storage_prices_set(actor=w.actor(w.admin), changes=[PriceChange("aws", "STANDARD", None)])
    assert cents(cost_estimate(actor=w.actor(w.owner), now=NOW).total) == Decimal("1.19")
    theirs = cost_estimate(actor=w.actor(w.other_admin), now=NOW)
    assert cents(theirs.total) == Decimal("23.00")


def test_series_month_by_month_from_taken_and_forgotten_times(
    priced: World, django_assert_num_queries: Any
) -> None:
    w = priced
    owner = w.actor(w.owner)
    with django_assert_num_queries(3):
        series = cost_series(actor=owner, months=3, now=NOW)

    assert [m.month for m in series] == [date(2030, 11, 1), date(2030, 12, 1), date(2031, 1, 1)]
    gb = [{tier: b // GB for tier, b in m.bytes_by_tier.items()} for m in series]
    # End of November (2030-12-01 00:00): the 20 GB of 11-29 (2 days old), the 50 GB of 11-09
    # and the 8 GB of 11-20 in STANDARD; the 30 GB of 09-30 (62 days) in STANDARD_IA; the disk.
    # 78 * 0.023 + 30 * 0.0125 = 1.794 + 0.375 = 2.169
    assert gb[0] == {"STANDARD": 83, "STANDARD_IA": 30}
    assert series[0].total == Decimal("2.169")
    # End of December: the 8 GB forgotten on 12-15 is gone; 10 GB of 12-29 and the disk in
    # STANDARD, 20 + 50 GB in STANDARD_IA, 30 GB (93 days) in GLACIER_IR.
    # 10 * 0.023 + 70 * 0.0125 + 30 * 0.004 = 0.23 + 0.875 + 0.12 = 1.225
    assert gb[1] == {"STANDARD": 15, "STANDARD_IA": 70, "GLACIER_IR": 30}
    assert series[1].total == Decimal("1.225")
    # This month: the estimate at NOW.
    assert gb[2] == {"STANDARD": 115, "STANDARD_IA": 20, "GLACIER_IR": 30}
    assert cents(series[2].total) == Decimal("1.19")

    assert len(cost_series(actor=w.actor(w.owner), now=NOW)) == 12
    with pytest.raises(ValidationFailed):
        cost_series(actor=w.actor(w.owner), months=0, now=NOW)


def test_tiers_move_like_s3_lifecycle_rules_and_never_warm_up() -> None:
    tiered = Tiering("STANDARD", 30, 90)
    taken = date(2031, 1, 1)

    def on(days: int, tiering: Tiering = tiered, kind: str = "s3") -> str:
        return tier_on(kind=kind, tiering=tiering, taken_on=taken, on=taken + timedelta(days=days))

    # An object of day D moves at midnight UTC after D + N days.
    assert [on(30), on(31), on(90), on(91)] == [
        "STANDARD",
        "STANDARD_IA",
        "STANDARD_IA",
        "GLACIER_IR",
    ]
    assert on(400, kind="local") == "STANDARD"
    assert on(40, Tiering("GLACIER_IR", 30, None)) == "GLACIER_IR"
    assert on(100, Tiering("STANDARD", None, 90)) == "GLACIER_IR"
    assert on(1000, Tiering("STANDARD", None, None)) == "STANDARD"


def test_price_writes_are_validated_and_for_admins_only(priced: World) -> None:
    w = priced
    with pytest.raises(Forbidden):
        storage_prices_set(
            actor=w.actor(w.lead), changes=[PriceChange("aws", "STANDARD", Decimal(1))]
        )
    with pytest.raises(ValidationFailed) as refused:
        storage_prices_set(
            actor=w.actor(w.admin),
            changes=[
                PriceChange("dropbox", "STANDARD", Decimal(1)),
                PriceChange("aws", "COLD", Decimal(1)),
                PriceChange("gcs", "STANDARD", Decimal("-0.01")),
            ],
        )
    assert set(refused.value.fields) == {
        "prices.0.provider",
        "prices.1.storage_class",
        "prices.2.usd_per_gb_month",
    }
    # replace: the Wasabi override goes, the new one stays
    storage_prices_set(
        actor=w.actor(w.admin),
        changes=[PriceChange("minio", "STANDARD", Decimal("0.002"))],
        replace=True,
    )
    rows = StoragePrice.objects.filter(organization=w.org).values_list("provider", flat=True)
    assert list(rows) == ["minio"]
    effective = {
        (p.provider, p.storage_class): p for p in storage_price_list(actor=w.actor(w.lead))
    }
    assert effective["minio", "STANDARD"].usd_per_gb_month == Decimal("0.002")
    assert effective["minio", "STANDARD"].override is not None
    assert effective["wasabi", "STANDARD"].usd_per_gb_month == Decimal("0.0069")
    assert effective["wasabi", "STANDARD"].override is None


# --- API ---


def _recent(world: World) -> World:
    """Rows relative to the real clock: the API prices the present."""
    w = world
    now = timezone.now()
    w.aws = LocationFactory(organization=w.org, name="AWS", provider="aws")
    w.wasabi = LocationFactory(organization=w.org, name="Wasabi", provider="wasabi")
    w.price = StoragePrice.objects.create(
        organization=w.org, provider="wasabi", storage_class="STANDARD", usd_per_gb_month="0.0059"
    )
    _snap(w.dataset, w.aws, now - DAY, 10)  # 10 * 0.023 = 0.23
    _snap(w.dataset_b, w.wasabi, now - DAY, 100)  # 100 * 0.0059 = 0.59
    return w


def test_cost_api_estimate_and_series(world: World, as_user: Any) -> None:
    w = _recent(world)

    body = as_user(w.owner).get("/api/v1/costs/").json()

    assert body["currency"] == "USD"
    assert body["total"] == "0.82"
    assert body["total_bytes"] == 110 * GB
    assert [(c["name"], c["usd"]) for c in body["by_client"]] == [
        ("Client B", "0.59"),
        ("Client A", "0.23"),
    ]
    assert body["by_target"][0]["id"] == str(w.wasabi.public_id)
    assert [(t["id"], t["bytes"]) for t in body["by_tier"]] == [("STANDARD", 110 * GB)]
    assert len(body["series"]) == 12
    assert body["series"][-1] == {
        "month": body["month"],
        "bytes_by_tier": {"STANDARD": 110 * GB},
        "total": "0.82",
    }

    lead = as_user(w.lead).get("/api/v1/costs/?months=2").json()
    assert lead["total"] == "0.23"
    assert len(lead["series"]) == 2
    assert str(w.client_b.public_id) not in str(lead)
    hidden = as_user(w.lead).get(f"/api/v1/costs/?client={w.client_b.public_id}")
    assert hidden.status_code == 404
    only_b = as_user(w.owner).get(f"/api/v1/costs/?client={w.client_b.public_id}").json()
    assert only_b["total"] == "0.59"
    assert as_user(w.owner).get("/api/v1/costs/?months=0").status_code == 400


def test_storage_price_api_reads_for_all_and_writes_for_admins(world: World, as_user: Any) -> None:
    w = _recent(world)
    url = "/api/v1/storage-prices/"

    table = as_user(w.lead).get(url).json()
    prices = {(p["provider"], p["storage_class"]): p for p in table["prices"]}
    assert table["currency"] == "USD"
    assert prices["wasabi", "STANDARD"] == {
        "id": str(w.price.public_id),
        "provider": "wasabi",
        "storage_class": "STANDARD",
        "usd_per_gb_month": "0.0059",
        "default_usd_per_gb_month": "0.0069",
        "overridden": True,
    }
    assert prices["aws", "GLACIER_IR"]["usd_per_gb_month"] == "0.004"
    assert prices["filesystem", "STANDARD"]["usd_per_gb_month"] == "0"

    change = {
        "prices": [{"provider": "aws", "storage_class": "STANDARD", "usd_per_gb_month": "0.03"}]
    }
    assert as_user(w.lead).patch(url, change, format="json").status_code == 403
    patched = as_user(w.admin).patch(url, change, format="json")
    assert patched.status_code == 200, patched.content
    after = {(p["provider"], p["storage_class"]): p for p in patched.json()["prices"]}
    assert after["aws", "STANDARD"]["usd_per_gb_month"] == "0.03"
    assert after["wasabi", "STANDARD"]["overridden"] is True  # PATCH keeps the others
    assert as_user(w.owner).get("/api/v1/costs/").json()["total"] == "0.89"  # 0.30 + 0.59

    replaced = as_user(w.admin).put(url, change, format="json").json()
    after = {(p["provider"], p["storage_class"]): p for p in replaced["prices"]}
    assert after["wasabi", "STANDARD"]["overridden"] is False  # PUT replaced the whole set
    assert after["aws", "STANDARD"]["overridden"] is True

    for bad in (
        {"prices": [{"provider": "aws", "storage_class": "STANDARD", "usd_per_gb_month": "-1"}]},
        {"prices": [{"provider": "dropbox", "storage_class": "STANDARD", "usd_per_gb_month": "1"}]},
        {"prices": [{"provider": "aws", "storage_class": "COLD", "usd_per_gb_month": "1"}]},
        {"prices": "aws"},
        {},
    ):
        refused = as_user(w.admin).put(url, bad, format="json")
        assert refused.status_code == 400, (bad, refused.content)
    duplicate = {"prices": [change["prices"][0], change["prices"][0]]}
    assert as_user(w.admin).patch(url, duplicate, format="json").status_code == 400
    cleared = as_user(w.admin).put(url, {"prices": []}, format="json").json()
    assert not any(p["overridden"] for p in cleared["prices"])
