"""The plan: every copy of the scope's data, enumerated before anyone approves — the primary
objects with all versions, each backup target's repository prefix, the copies the product's own
restores wrote, the keys — and what was handed out (downloads, the operator's restores) or
already removed (drill scratch), which the certificate names."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from backups.models import (
    BackupSchedule,
    CopyKind,
    DataCopy,
    DatasetProtection,
    RunTarget,
    Snapshot,
)
from backups.services import location_key, repository_base, store_for_location
from backups.services.sources import database_exists
from backups.sources.process import SourceError
from backups.storage import (
    ObjectStore,
    ObjectVersion,
    StorageError,
)
from clients.models import (
    DATABASE_KINDS,
    Dataset,
    LifecycleState,
    LocationKind,
    StorageLocation,
)
from kernel.exceptions import (
    Conflict,
)
from lifecycle.models import DeletionRequest, ItemRole

logger = logging.getLogger(__name__)


def database_entry(dataset: Dataset, location: StorageLocation, name: str) -> dict[str, Any]:
    """A database a restore made: one item, dropped whole (DROP DATABASE), verified gone by
    listing the server's databases. Counted as one object when it exists."""
    try:
        exists = database_exists(location, name)
    except SourceError as exc:
        raise Conflict(f"The plan could not list the databases on {location.name}: {exc}") from None
    return {
        "dataset": str(dataset.public_id),
        "location_pk": location.pk,
        "location": _describe_location(location),
        "role": ItemRole.RESTORED,
        "prefix": name,
        "database": name,
        "objects": int(exists),
        "versions": int(exists),
        "delete_markers": 0,
        "bytes": 0,
    }


def primary_kept(dataset: Dataset) -> dict[str, Any]:
    """The client's own repository, database or SaaS workspace: named, and left alone."""
    what = {LocationKind.GIT: "repository", LocationKind.SAAS: "workspace"}.get(
        LocationKind(dataset.location.kind), "database"
    )
    where = dataset.path or dataset.location.get_provider_display()
    return {
        "dataset": str(dataset.public_id),
        "location": dataset.location.name,
        "kind": dataset.location.kind,
        "endpoint": dataset.location.endpoint_url,
        what: dataset.path,
        "note": f"primary {what} {where} on {dataset.location.name}: primary, not deleted "
        "by AgencyOps (it is the client's own; delete it there if the contract asks).",
    }


# --- the plan ---


def _primary_prefix(dataset: Dataset) -> str | None:
    path = dataset.path.strip("/")
    if not path or not dataset.location.is_store:
        # A repository on the client's git host, a database on its server: not ours to drop.
        return None
    return location_key(dataset.location, path) + "/"


def _backup_locations(dataset: Dataset) -> list[StorageLocation]:
    """Every target that may hold a repository of the dataset: past snapshots, schedules,
    runs and the policy's targets."""
    ids: set[int] = set(
        Snapshot.objects.filter(dataset=dataset).values_list("location_id", flat=True)
    )
    ids |= set(BackupSchedule.objects.filter(dataset=dataset).values_list("location_id", flat=True))
    ids |= set(RunTarget.objects.filter(dataset=dataset).values_list("location_id", flat=True))
    protection = DatasetProtection.objects.filter(dataset=dataset).select_related("policy").first()
    if protection is not None and protection.policy is not None:
        ids |= set(protection.policy.policy_targets.values_list("location_id", flat=True))
    return list(StorageLocation.objects.filter(pk__in=ids).order_by("pk"))


def _describe_location(location: StorageLocation) -> dict[str, Any]:
    return {
        "id": str(location.public_id),
        "name": location.name,
        "provider": location.provider,
        "region": location.region,
        "bucket": location.bucket,
        "root": location.prefix,
        "kind": location.kind,
    }


def _count(store: ObjectStore, prefix: str) -> dict[str, int]:
    keys: set[str] = set()
    versions = markers = size = 0
    for version in _versions_under(store, prefix):
        if version.is_delete_marker:
            markers += 1
        else:
            versions += 1
            size += version.size
        keys.add(version.key)
    return {"objects": len(keys), "versions": versions, "delete_markers": markers, "bytes": size}


def _versions_under(store: ObjectStore, prefix: str) -> Iterator[ObjectVersion]:
    """Every version under `prefix`, checked again here: nothing outside it is ever yielded."""
    if not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"refusing to list an open prefix {prefix!r}")
    for version in store.list_versions(prefix):
        if version.key.startswith(prefix):
            yield version


def _guard_other_datasets(
    location: StorageLocation, prefix: str, in_scope: set[int], *, what: str, inside: bool
) -> None:
    """Nothing of a dataset outside the request is deleted with it: a prefix that contains
    another dataset's primary copy (or, with `inside`, lies within one: a restore written into
    another dataset's folder) is refused."""
    others = Dataset.objects.filter(location=location).exclude(pk__in=in_scope)
    for other in others.exclude(lifecycle_state=LifecycleState.DELETED):
        other_prefix = _primary_prefix(other)
        if other_prefix is None:
            continue
        if other_prefix.startswith(prefix) or (inside and prefix.startswith(other_prefix)):
            raise Conflict(
                f"{what} overlaps the data of {other.name}; include it in the request or move "
                "it first."
            )


def _restored_copies(dataset: Dataset) -> list[DataCopy]:
    """The copies restores wrote into storage locations and new databases, not yet deleted."""
    return list(
        DataCopy.objects.filter(
            dataset=dataset,
            kind__in=[CopyKind.RESTORE, CopyKind.DATABASE],
            removed_at__isnull=True,
        ).select_related("location")
    )


def copies_described(datasets: Sequence[Dataset]) -> list[dict[str, Any]]:
    """Every copy the product made of these datasets, as the plan and the certificate name it:
    restores into locations (deleted with the request), files handed out and the operator's
    restores into directories (which no deletion can recall), drill scratch (already removed)."""
    rows = (
        DataCopy.objects.filter(dataset__in=list(datasets))
        .select_related("dataset", "location", "made_by")
        .order_by("made_at", "id")
    )
    return [
        {
            "id": str(copy.public_id),
            "dataset": str(copy.dataset.public_id),
            "kind": copy.kind,
            "location": copy.location.name if copy.location is not None else None,
            "location_id": str(copy.location.public_id) if copy.location is not None else None,
            "path": copy.path,
            "files": copy.files,
            "bytes": copy.bytes,
            "sha256": copy.sha256 or None,
            "made_by": copy.made_by.get_username() if copy.made_by is not None else None,
            "made_at": copy.made_at.isoformat(),
            "removed_at": copy.removed_at.isoformat() if copy.removed_at else None,
            "removal": copy.removal or None,
        }
        for copy in rows
    ]


def _entry(dataset: Dataset, location: StorageLocation, role: str, prefix: str) -> dict[str, Any]:
    if location.kind in DATABASE_KINDS:
        return database_entry(dataset, location, prefix)
    try:
        counts = _count(store_for_location(location), prefix)
    except StorageError as exc:
        raise Conflict(f"The plan could not list {location.name}: {exc}") from None
    return {
        "dataset": str(dataset.public_id),
        "location_pk": location.pk,
        "location": _describe_location(location),
        "role": role,
        "prefix": prefix,
        **counts,
    }


def _copy_entries(
    dataset: Dataset, in_scope: set[int], known: set[tuple[int, str]]
) -> list[dict[str, Any]]:
    """Plan entries for the restored copies of a dataset not yet in `known` (location, prefix)."""
    entries = []
    for copy in _restored_copies(dataset):
        if copy.location is None:  # never: a restore's copy has a location (constraint)
            continue
        if copy.kind == CopyKind.DATABASE:
            if (copy.location.pk, copy.path) not in known:
                known.add((copy.location.pk, copy.path))
                entries.append(database_entry(dataset, copy.location, copy.path))
            continue
        prefix = location_key(copy.location, copy.path) + "/"
        if (copy.location.pk, prefix) in known:
            continue
        _guard_other_datasets(
            copy.location, prefix, in_scope, what=f"A restored copy at {prefix}", inside=True
        )
        known.add((copy.location.pk, prefix))
        entries.append(_entry(dataset, copy.location, ItemRole.RESTORED, prefix))
    return entries


def deletion_plan_compute(
    datasets: Sequence[Dataset], *, drop_primary_databases: bool = False
) -> dict[str, Any]:
    """Every copy, before anyone approves: each dataset's primary objects (all versions and
    delete markers), each backup target's repository prefix (all versions), every folder the
    product's own restores wrote, and the keys, with counts and bytes per location; and the
    copies it cannot delete (files handed out) or already removed (drill scratch)."""
    in_scope = {d.pk for d in datasets}
    plan: dict[str, Any] = {"datasets": [], "locations": [], "keys": []}
    known: set[tuple[int, str]] = set()
    for dataset in datasets:
        plan["datasets"].append(
            {
                "pk": dataset.pk,
                "id": str(dataset.public_id),
                "name": dataset.name,
                "kind": dataset.kind,
                "classification": dataset.classification,
                "contains_personal_data": dataset.contains_personal_data,
                "engagement": (
                    str(dataset.engagement.public_id) if dataset.engagement is not None else None
                ),
            }
        )
        entries: list[tuple[StorageLocation, str, str]] = []
        primary = _primary_prefix(dataset)
        if primary is not None:
            _guard_other_datasets(
                dataset.location,
                primary,
                in_scope,
                what=f"The primary path of {dataset.name}",
                inside=False,
            )
            entries.append((dataset.location, ItemRole.PRIMARY, primary))
        entries.extend(
            (loc, ItemRole.BACKUP, repository_base(loc, dataset) + "/")
            for loc in _backup_locations(dataset)
        )
        for location, role, prefix in entries:
            known.add((location.pk, prefix))
            plan["locations"].append(_entry(dataset, location, role, prefix))
            if role == ItemRole.BACKUP:
                plan["keys"].append(
                    {
                        "dataset": str(dataset.public_id),
                        "where": f"{location.name}: {prefix}key",
                    }
                )
        plan["locations"].extend(_copy_entries(dataset, in_scope, known))
        if drop_primary_databases and dataset.location.kind in DATABASE_KINDS:
            # Asked for explicitly; every approver confirms it on a line of its own.
            dropped = database_entry(dataset, dataset.location, dataset.path)
            dropped["role"] = ItemRole.PRIMARY
            known.add((dataset.location.pk, dataset.path))
            plan["locations"].append(dropped)
            plan.setdefault("primaries_dropped", []).append(
                {
                    "dataset": str(dataset.public_id),
                    "location": dataset.location.name,
                    "endpoint": dataset.location.endpoint_url,
                    "database": dataset.path,
                    "note": f"primary database {dataset.path} on {dataset.location.name}: "
                    "dropped by AgencyOps, as the request asks and every approver confirmed",
                }
            )
        elif not dataset.location.is_store:
            plan.setdefault("primaries_kept", []).append(primary_kept(dataset))
            plan.setdefault("notes", []).append(f"{dataset.name}: {primary_kept(dataset)['note']}")
        elif primary is None:
            plan.setdefault("notes", []).append(
                f"{dataset.name} has no primary path; its primary copy is not deleted."
            )
        plan["keys"].append({"dataset": str(dataset.public_id), "where": "database (wrapped)"})
    plan["copies"] = copies_described(datasets)
    plan["totals"] = _totals(plan["locations"])
    return plan


def _totals(entries: Sequence[dict[str, Any]]) -> dict[str, int]:
    names = ("objects", "versions", "delete_markers", "bytes")
    return {name: sum(e[name] for e in entries) for name in names}


def deletion_plan_extend(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """When execution starts (no new copy can be made any more: the datasets are pending
    deletion, no restore runs), add what restores wrote since the plan was drafted, so the
    deletion reaches it and the certificate names it."""
    plan = dict(request.plan)
    known = {(e["location_pk"], e["prefix"]) for e in plan.get("locations", [])}
    in_scope = {d.pk for d in datasets}
    added = [e for d in datasets for e in _copy_entries(d, in_scope, known)]
    copies = copies_described(datasets)
    if not added and copies == plan.get("copies"):
        return
    plan["locations"] = [*plan.get("locations", []), *added]
    plan["copies"] = copies
    plan["totals"] = _totals(plan["locations"])
    if added:
        plan.setdefault("notes", []).append(
            f"{len(added)} restored cop{'y' if len(added) == 1 else 'ies'} made after the plan "
            "was drafted, added when the deletion started."
        )
    DeletionRequest.objects.filter(pk=request.pk).update(plan=plan)
    request.plan = plan
