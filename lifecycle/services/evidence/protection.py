"""Evidence sections about how the data is protected: 3-2-1 and RPO per target, restore drills
and restores against the RTO, and the keys. Like the sections in `data`, each costs a fixed
number of queries whatever the number of datasets."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from backups.models import RestoreRun, RunStatus
from backups.services.assurance import ProtectionStatus
from backups.services.drills import DrillRecord, DrillSummary
from clients.models import Client
from lifecycle.services.evidence.data import HeldDataset, Protection, iso, seconds, username


def protection_section(
    datasets: Sequence[HeldDataset],
    protections: Mapping[int, Protection],
    policy_refs: Mapping[int, str],
    location_refs: Mapping[int, str],
    statuses: Mapping[int, ProtectionStatus],
    now: datetime,
) -> list[dict[str, Any]]:
    entries = []
    for d in datasets:
        status = statuses[d.pk]
        protection = protections.get(d.pk)
        policy_id = protection.policy_id if protection is not None else None
        entries.append(
            {
                "dataset": d.ref,
                "policy": policy_refs.get(policy_id) if policy_id is not None else None,
                "pruning_suspended": bool(protection and protection.pruning_suspended),
                "three_two_one": {
                    "met": status.met,
                    "retired": status.retired,
                    "copies": status.copies,
                    "media": status.media,
                    "offsite": status.offsite,
                    "history": status.history,
                    "reasons": list(status.reasons),
                    "rules": [
                        {"name": r.name, "met": r.met, "reason": r.reason} for r in status.rules
                    ],
                },
                "rpo_seconds": seconds(d.rpo),
                "last_good_at": iso(status.last_good_at),
                "rpo_met": status.rpo_met,
                "targets": [
                    {
                        "location": location_refs[t.location_id],
                        "last_snapshot_at": iso(t.last_snapshot_at),
                        "age_seconds": seconds(now - t.last_snapshot_at)
                        if t.last_snapshot_at is not None
                        else None,
                        "fresh": t.fresh,
                        "restorable_snapshots": t.restorable_snapshots,
                    }
                    for t in status.targets
                ],
            }
        )
    return entries


# --- restores ---


def last_restores(client: Client) -> dict[int, RestoreRun]:
    """The newest restore (not a drill) of each dataset of the client, in one query."""
    newest = Window(
        RowNumber(), partition_by=F("dataset_id"), order_by=[F("created_at").desc(), F("id").desc()]
    )
    rows = (
        RestoreRun.objects.filter(dataset__client=client, is_drill=False)
        .annotate(rank=newest)
        .filter(rank=1)
        .select_related("requested_by")
    )
    return {r.dataset_id: r for r in rows}


def _drill(drill: DrillRecord | None) -> dict[str, Any] | None:
    if drill is None:
        return None
    return {
        "id": str(drill.public_id),
        "status": drill.status,
        "started_at": iso(drill.started_at),
        "finished_at": iso(drill.finished_at),
        "snapshot_taken_at": iso(drill.snapshot_taken_at),
        "measured_seconds": seconds(drill.measured_duration),
        "retrieval_seconds": seconds(drill.retrieval_duration),
        "rto_seconds": seconds(drill.rto),
        "rto_met": drill.rto_met,
        "recovery_point_age_seconds": seconds(drill.recovery_point_age),
        "rpo_met": drill.rpo_met,
        "files_verified": drill.files_verified,
        "issues": [str(issue) for issue in drill.issues or []],
        "reviewed_by": drill.reviewed_by,
        "reviewed_at": iso(drill.reviewed_at),
    }


def _restore(run: RestoreRun | None, rto: timedelta) -> dict[str, Any] | None:
    if run is None:
        return None
    duration = run.duration_seconds
    rto_met: bool | None = None
    if run.status == RunStatus.FAILED:
        rto_met = False
    elif run.status == RunStatus.SUCCEEDED and duration is not None:
        rto_met = duration <= rto.total_seconds()
    return {
        "id": str(run.public_id),
        "status": run.status,
        "requested_by": username(run.requested_by),
        "requested_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": round(duration) if duration is not None else None,
        "rto_met": rto_met,
        "files": run.files,
        "bytes": run.bytes,
    }


def restore_tests_section(
    datasets: Sequence[HeldDataset],
    drills: Mapping[int, DrillSummary],
    restores: Mapping[int, RestoreRun],
) -> list[dict[str, Any]]:
    entries = []
    for d in datasets:
        drill = drills.get(d.pk)
        entries.append(
            {
                "dataset": d.ref,
                "rto_seconds": seconds(d.rto),
                "drill_within_period": bool(drill and drill.within_period),
                "next_drill_due_at": iso(drill.due_at) if drill is not None else None,
                "last_drill": _drill(drill.last if drill is not None else None),
                "last_restore": _restore(restores.get(d.pk), d.rto),
            }
        )
    return entries


# --- keys ---


def encryption_section(
    client: Client, datasets: Sequence[HeldDataset], protections: Mapping[int, Protection]
) -> dict[str, Any]:
    keys = []
    for d in datasets:
        protection = protections.get(d.pk)
        wrapped = protection.wrapped_key if protection is not None else None
        destroyed_at = protection.key_destroyed_at if protection is not None else None
        if wrapped:
            state = "active"
        elif destroyed_at is not None:
            state = "destroyed"
        else:
            state = "none"
        keys.append(
            {
                "dataset": d.ref,
                "state": state,
                "key_id": hashlib.sha256(wrapped).hexdigest()[:16] if wrapped else None,
                "destroyed_at": iso(destroyed_at),
            }
        )
    source = "environment" if settings.AGENCYOPS_MASTER_KEY else "file"
    return {
        "algorithm": "AES-256-GCM",
        "chunk_addressing": "HMAC-SHA256 of the content under a key derived from the dataset "
        "key: identical content dedups inside a dataset, nothing is comparable across datasets",
        "key_wrapping": "each dataset's AES-256 data key is wrapped (AES-256-GCM) by the "
        "organization's master key; only wrapped keys are stored, in the database and beside "
        "each backup repository",
        "key_custody": {
            "holder": client.organization.name,
            "master_key_source": source,
            "description": "The master key is held by the agency, outside the database "
            f"(configured by {source}); the storage providers never see a plain key. "
            "Destroying a dataset's key makes every copy of it unreadable.",
        },
        "keys": keys,
    }
