"""What reading archived content back costs a month, for the cost estimate (cost.py).

A policy that uploads file content to an archive class (GLACIER, DEEP_ARCHIVE) pays per GB
retrieved, at the retrieval tier (`AGENCYOPS_ARCHIVE_RETRIEVAL_TIER`; DEEP_ARCHIVE has no
Expedited tier, so Standard applies there). What is read back every month without a disaster
is the drills' restores: a drill every `drill_every` restores one snapshot, picked among the
dataset's targets, so each S3 target in an archive class is charged

    largest restorable snapshot's bytes * (average month / drill_every) / targets holding one

at `AGENCYOPS_RETRIEVAL_PRICES[provider][class][tier]` USD per GB. Snapshot bytes are the files'
plain size, so the figure is a ceiling (packs are compressed); request fees are left out (16 MiB
packs make them a rounding error). Restores and verifies on demand come on top.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from backups.models import StorageClass
from backups.storage import ARCHIVE_CLASSES
from clients.models import LocationKind

BYTES_PER_GB = 1024**3
AVERAGE_MONTH = timedelta(days=365.25 / 12)
RETRIEVAL_KEY = "retrieval"
RETRIEVAL_NAME = "Archive retrieval (restore drills)"


@dataclass(frozen=True)
class RetrievalShare:
    """One (dataset, target)'s monthly retrieval: bytes read back and their price."""

    client_key: str
    client_name: str
    target_key: str
    target_name: str
    bytes: int
    usd: Decimal


def retrieval_price(provider: str, storage_class: str, tier: str) -> Decimal:
    """USD per GB retrieved; 0 where the table has no price (a provider without the class)."""
    if storage_class == StorageClass.DEEP_ARCHIVE and tier == "Expedited":
        tier = "Standard"  # what a retrieval of DEEP_ARCHIVE falls back to
    table: dict[str, dict[str, dict[str, str]]] = settings.AGENCYOPS_RETRIEVAL_PRICES
    price = table.get(provider, {}).get(storage_class, {}).get(tier)
    return Decimal(str(price)) if price is not None else Decimal(0)


def retrieval_shares(rows: Iterable[Mapping[str, Any]]) -> list[RetrievalShare]:
    """Each archive-class target's monthly share of its dataset's drills, from the estimate's
    rows of restorable snapshots (per dataset, target and day: `largest` is the day's largest
    snapshot), so the estimate needs no query of its own for it."""
    largest: dict[tuple[int, str], int] = defaultdict(int)
    found: dict[tuple[int, str], Mapping[str, Any]] = {}
    for row in rows:
        if row["dataset__protection__policy__storage_class"] not in ARCHIVE_CLASSES:
            continue
        key = (row["dataset_id"], str(row["location__public_id"]))
        largest[key] = max(largest[key], int(row["largest"] or 0))
        found[key] = row
    targets: dict[int, int] = defaultdict(int)
    for dataset_id, _ in found:
        targets[dataset_id] += 1
    tier = settings.AGENCYOPS_ARCHIVE_RETRIEVAL_TIER
    shares = []
    for key, row in found.items():
        every: timedelta | None = row["dataset__protection__policy__drill_every"]
        if row["location__kind"] != LocationKind.S3 or not every or every <= timedelta(0):
            continue  # a directory has no classes; without a drill period nothing is drilled
        retrieved = Decimal(largest[key]) * Decimal(AVERAGE_MONTH / every) / targets[key[0]]
        price = retrieval_price(
            row["location__provider"], row["dataset__protection__policy__storage_class"], tier
        )
        shares.append(
            RetrievalShare(
                client_key=str(row["dataset__client__public_id"]),
                client_name=row["dataset__client__name"],
                target_key=key[1],
                target_name=row["location__name"],
                bytes=int(retrieved),
                usd=retrieved * price / BYTES_PER_GB,
            )
        )
    return shares
