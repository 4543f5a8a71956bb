"""Evidence sections about the data: the inventory, where every copy is and how that storage is
set up, and the backup policies (how the data is protected is in `protection`). Each section
costs a fixed number of queries whatever the number of datasets; rows are read as values where
no model instance is needed (1,000 datasets must not mean 6,000 instances)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from backups.models import BackupPolicy, PolicyTarget
from backups.services.assurance import ProtectionStatus, storage_family
from backups.services.posture import latest_audits
from clients.models import Client, Dataset, Engagement, LocationKind, StorageLocation


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def day(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def seconds(value: timedelta | None) -> int | None:
    return round(value.total_seconds()) if value is not None else None


def ref(value: Any) -> str | None:
    return str(value) if value is not None else None


def public_ref(obj: Any) -> str | None:
    """A related row's public id, or None."""
    return str(obj.public_id) if obj is not None else None


def username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


# --- what is held ---


def client_section(client: Client) -> dict[str, Any]:
    return {
        "id": str(client.public_id),
        "name": client.name,
        "slug": client.slug,
        "status": client.status,
        "contact_name": client.contact_name,
        "contact_email": client.contact_email,
        "contract_reference": client.contract_reference,
        "dpa_reference": client.dpa_reference,
        "created_at": iso(client.created_at),
    }


def engagements_section(client: Client) -> list[dict[str, Any]]:
    rows = Engagement.objects.filter(client=client).order_by("starts_on", "id")
    return [
        {
            "id": str(e.public_id),
            "name": e.name,
            "status": e.status,
            "starts_on": day(e.starts_on),
            "ends_on": day(e.ends_on),
            "deletion_due_days": e.deletion_due_days,
        }
        for e in rows
    ]


@dataclass(frozen=True, slots=True)
class HeldDataset:
    """A dataset as the document, 3-2-1 and the drill status read it: its own values and the
    owner's name and engagement's public id, read as values (a thousand datasets must not mean
    a thousand model instances, nor their related rows). Its primary location's public id is
    in the locations section's `refs`."""

    pk: int
    ref: str  # its public id
    name: str
    kind: str
    classification: str
    contains_personal_data: bool
    source: str
    location_id: int
    path: str
    lifecycle_state: str
    rpo: timedelta
    rto: timedelta
    created_at: datetime
    owner_name: str | None
    engagement_ref: UUID | None


_HELD_DATASET_COLUMNS = (
    "id",
    "public_id",
    "name",
    "kind",
    "classification",
    "contains_personal_data",
    "source",
    "location_id",
    "path",
    "lifecycle_state",
    "rpo",
    "rto",
    "created_at",
    "owner__username",
    "engagement__public_id",
)


@dataclass(frozen=True, slots=True)
class Protection:
    """The backup side of one dataset, as the document needs it."""

    policy_id: int | None
    pruning_suspended: bool
    wrapped_key: bytes | None
    key_destroyed_at: datetime | None


_PROTECTION_COLUMNS = (
    "protection__id",
    "protection__policy_id",
    "protection__pruning_suspended",
    "protection__wrapped_key",
    "protection__key_destroyed_at",
)


def datasets_of(client: Client) -> tuple[list[HeldDataset], dict[int, Protection]]:
    """The client's datasets, deleted ones too, by name, and the backup side of each that has
    one (dataset pk -> `Protection`): one query."""
    rows = (
        Dataset.objects.filter(client=client)
        .order_by("name", "id")
        .values_list(*_HELD_DATASET_COLUMNS, *_PROTECTION_COLUMNS)
    )
    datasets, protections = [], {}
    width = len(_HELD_DATASET_COLUMNS)
    for row in rows:
        dataset = HeldDataset(row[0], str(row[1]), *row[2:width])
        datasets.append(dataset)
        protection_id, policy_id, suspended, key, destroyed = row[width:]
        if protection_id is not None:
            protections[dataset.pk] = Protection(
                policy_id, suspended, bytes(key) if key else None, destroyed
            )
    return datasets, protections


def inventory_section(
    datasets: Sequence[HeldDataset], location_refs: Mapping[int, str]
) -> list[dict[str, Any]]:
    return [
        {
            "id": d.ref,
            "name": d.name,
            "kind": d.kind,
            "classification": d.classification,
            "contains_personal_data": d.contains_personal_data,
            "source": d.source,
            "primary_location": location_refs[d.location_id],
            "path": d.path,
            "owner": d.owner_name,
            "engagement": ref(d.engagement_ref),
            "lifecycle_state": d.lifecycle_state,
            "rpo_seconds": seconds(d.rpo),
            "rto_seconds": seconds(d.rto),
            "registered_at": iso(d.created_at),
        }
        for d in datasets
    ]


# --- how it is protected ---


class PolicyTargets(NamedTuple):
    """Policy pk -> its targets in order, as (location pk, location public id); and the
    Object Lock retention each policy asks of its targets."""

    order: dict[int, list[tuple[int, str]]]
    retention: dict[int, list[dict[str, Any]]]


def policy_targets(policy_ids: Iterable[int]) -> PolicyTargets:
    found = PolicyTargets({}, {})
    rows = (
        PolicyTarget.objects.filter(policy_id__in=set(policy_ids))
        .order_by("policy_id", "position", "id")
        .values_list(
            "policy_id",
            "location_id",
            "location__public_id",
            "object_lock_mode",
            "object_lock_days",
        )
    )
    for policy_id, location_id, location_ref, mode, days in rows:
        found.order.setdefault(policy_id, []).append((location_id, str(location_ref)))
        if mode:
            found.retention.setdefault(policy_id, []).append(
                {"location": str(location_ref), "mode": mode, "days": days}
            )
    return found


def policies_section(
    policy_ids: Iterable[int],
    targets: Mapping[int, list[tuple[int, str]]],
    retention: Mapping[int, list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """The policies the datasets follow, and their public ids by pk."""
    policies = list(BackupPolicy.objects.filter(pk__in=set(policy_ids)).order_by("name", "id"))
    entries = [
        {
            "id": str(p.public_id),
            "name": p.name,
            "frequency": p.frequency,
            "time_of_day": p.time_of_day.strftime("%H:%M"),
            "retention": p.retention_summary,
            "keep": {
                "last": p.keep_last,
                "hourly": p.keep_hourly,
                "daily": p.keep_daily,
                "weekly": p.keep_weekly,
                "monthly": p.keep_monthly,
                "yearly": p.keep_yearly,
                "forever": p.keep_forever,
            },
            "storage_class": p.storage_class,
            "infrequent_access_after_days": p.infrequent_access_after_days,
            "archive_after_days": p.archive_after_days,
            "drill_every_seconds": seconds(p.drill_every),
            "targets": [location_ref for _, location_ref in targets.get(p.pk, [])],
            "target_retention": retention.get(p.pk, []),
        }
        for p in policies
    ]
    return entries, {p.pk: str(p.public_id) for p in policies}


def _posture(audit: Any) -> dict[str, Any] | None:
    if audit is None:
        return None
    facts: dict[str, Any] = audit.facts or {}
    lock = facts.get("object_lock") or {}
    block = facts.get("public_access_block")
    return {
        "audited_at": iso(audit.audited_at),
        "reachable": audit.reachable,
        "versioning": facts.get("versioning"),
        "mfa_delete": facts.get("mfa_delete"),
        "object_lock": {
            "enabled": bool(lock.get("enabled")),
            "mode": lock.get("mode"),
            "days": lock.get("days"),
            "years": lock.get("years"),
            "policy_retention": [
                {"policy": r["policy"], "mode": r["mode"], "days": r["days"]}
                for r in facts.get("policy_retention") or []
            ],
        },
        "replication_rules": len(facts.get("replication") or []),
        "lifecycle_rules": len(facts.get("lifecycle") or []),
        "encryption": facts.get("encryption"),
        "public_access_blocked": all(block.values()) if isinstance(block, dict) else None,
        "logging": (facts["logging"] is not None) if "logging" in facts else None,
        "findings": [
            {"check": f.check_name, "severity": f.severity, "message": f.message}
            for f in sorted(audit.findings.all(), key=lambda f: f.check_name)
        ],
    }


def locations_section(
    client: Client,
    datasets: Sequence[HeldDataset],
    protections: Mapping[int, Protection],
    targets: Mapping[int, list[tuple[int, str]]],
    statuses: Mapping[int, ProtectionStatus],
) -> tuple[list[dict[str, Any]], int, dict[int, str]]:
    """Every location holding a copy, with the latest posture audit of each bucket; returns
    them, the number of findings those audits hold, and their public ids by pk (`refs`: every
    primary and target the other sections name)."""
    primaries = {dataset.location_id for dataset in datasets}
    policy_ids = {p.policy_id for p in protections.values() if p.policy_id is not None}
    backup_targets = {
        location_id for policy_id in policy_ids for location_id, _ in targets.get(policy_id, [])
    }
    backup_targets.update(t.location_id for s in statuses.values() for t in s.targets)
    locations = list(
        StorageLocation.objects.filter(pk__in=primaries | backup_targets).order_by("name", "id")
    )
    audits = latest_audits([loc.pk for loc in locations if loc.kind == LocationKind.S3])
    entries, findings = [], 0
    refs = {loc.pk: str(loc.public_id) for loc in locations}
    roles = (("primary", primaries), ("backup_target", backup_targets))
    for loc in locations:
        posture = _posture(audits.get(loc.pk))
        findings += len(posture["findings"]) if posture is not None else 0
        entries.append(
            {
                "id": refs[loc.pk],
                "name": loc.name,
                "kind": loc.kind,
                "provider": loc.provider,
                "region": loc.region,
                "medium": storage_family(loc),
                "bucket": loc.bucket,
                "prefix": loc.prefix,
                "dedicated_to_client": loc.client_id == client.pk,
                "roles": [role for role, pks in roles if loc.pk in pks],
                "posture": posture,
            }
        )
    return entries, findings, refs
