"""Execution: claimed once, resumable, in batches of every version under the plan's prefixes,
keys destroyed first, verified by listing again; then the certificate. A dead worker's claim goes
stale after kernel.claims.STALE_AFTER and is taken over. The datasets' state, schedules, keys and
copy records are written by the services of their apps (clients, backups)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backups.models import (
    ACTIVE_RUN_STATES,
    RestoreRun,
    RunTarget,
)
from backups.services import store_for_location
from backups.services.erasure import copies_forget, dataset_keys_destroy, schedules_stop
from backups.services.exports import export_inbox_remove
from backups.services.sources import database_drop, database_exists, mirror_cache_remove
from backups.services.stores import VersionLocks
from backups.sources.process import SourceError, SourceUnreachable
from backups.storage import (
    DELETE_BATCH_SIZE,
    EndpointUnreachable,
    StorageError,
)
from clients.models import DATABASE_KINDS, Dataset, LifecycleState
from clients.services.states import dataset_state_set
from kernel import claims
from kernel.exceptions import (
    Conflict,
    LegalHoldActive,
    RetentionActive,
)
from kernel.tenancy import Actor
from lifecycle.models import (
    DeletionItem,
    DeletionRequest,
    DeletionState,
)
from lifecycle.services.deletion.common import (
    DELETION_CLAIM,
    MAX_ROUNDS,
    AfterBatch,
    DeletionDeferred,
    DeletionFailed,
    _lock_request,
    blocking_checks,
    checks_record,
    execution_enqueue,
    request_datasets,
)
from lifecycle.services.deletion.plan import _versions_under, deletion_plan_extend
from lifecycle.services.deletion.verify import deletion_verify

logger = logging.getLogger(__name__)


# --- execution ---


def _claim(public_id: str, now: datetime) -> DeletionRequest | None:
    """Win the request once: approved, or executing under a dead worker's stale heartbeat."""
    if not claims.claim(
        DeletionRequest.objects.filter(public_id=public_id), DELETION_CLAIM, now=now, error=""
    ):
        return None
    request: DeletionRequest = DeletionRequest.objects.select_related("organization", "client").get(
        public_id=public_id
    )
    if request.started_at is None:
        request.started_at = now
        request.save(update_fields=["started_at"])
    return request


def _release(
    request: DeletionRequest, *, state: str = DeletionState.EXECUTING, error: str = ""
) -> None:
    claims.release(
        DeletionRequest.objects.filter(pk=request.pk),
        DELETION_CLAIM,
        state=state,
        error=error[:4000],
    )


def _items_from_plan(request: DeletionRequest) -> list[DeletionItem]:
    by_id = {str(d.public_id): d for d in request_datasets(request)}
    for entry in request.plan.get("locations", []):
        DeletionItem.objects.get_or_create(
            request=request,
            location_id=entry["location_pk"],
            prefix=entry["prefix"],
            defaults={
                "dataset": by_id[entry["dataset"]],
                "role": entry["role"],
                "objects_found": entry["objects"],
                "versions_found": entry["versions"],
                "delete_markers_found": entry["delete_markers"],
                "bytes_found": entry["bytes"],
            },
        )
    return list(request.items.select_related("location", "dataset").order_by("pk"))


def _datasets_state_set(
    request: DeletionRequest, datasets: Sequence[Dataset], state: LifecycleState
) -> None:
    actor = Actor.system(request.organization)
    for dataset in datasets:
        dataset_state_set(actor=actor, dataset=dataset, state=state)


def _prepare(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """Stop new copies: datasets lose their schedules, then become deletion_pending (a state
    change the backup app does not answer with schedules). A backup still running would write
    behind the deletion, so execution waits for it."""
    pks = [d.pk for d in datasets]
    with transaction.atomic():
        schedules_stop(datasets=datasets)
        _datasets_state_set(request, datasets, LifecycleState.DELETION_PENDING)
    if RunTarget.objects.filter(dataset_id__in=pks, active=True).exists():
        raise DeletionDeferred("A backup of a dataset in scope is still running.")
    # A restore (or a drill) still writing would leave a copy behind the deletion.
    if RestoreRun.objects.filter(dataset_id__in=pks, status__in=ACTIVE_RUN_STATES).exists():
        raise DeletionDeferred("A restore of a dataset in scope is still running.")
    deletion_plan_extend(request, datasets)
    total = sum(e["versions"] + e["delete_markers"] for e in request.plan.get("locations", []))
    DeletionRequest.objects.filter(pk=request.pk, versions_total__lt=total).update(
        versions_total=total
    )


def _destroy_database_keys(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """Crypto-shred first: the wrapped data keys in the database are emptied, so whatever
    storage keeps for a while (object lock, archive tiers) is unreadable from now on."""
    now = timezone.now()
    dataset_keys_destroy(datasets=datasets, now=now)
    DeletionRequest.objects.filter(pk=request.pk, keys_destroyed_at__isnull=True).update(
        keys_destroyed_at=now
    )


def _delete_item(
    request: DeletionRequest,
    item: DeletionItem,
    locks: VersionLocks,
    after_batch: AfterBatch | None,
) -> None:
    """List what remains under the item's prefix, delete it in batches of 1,000 versions, and
    repeat until nothing deletable remains. Lock-refused versions are recorded, not retried.
    A database a restore made is dropped whole."""
    if item.location.kind in DATABASE_KINDS:
        _drop_database_item(request, item)
        return
    store = store_for_location(item.location)
    retained = {(r["key"], r["version_id"]) for r in item.retained}
    for _round in range(MAX_ROUNDS):
        pending = [
            (v.key, v.version_id)
            for v in _versions_under(store, item.prefix)
            if (v.key, v.version_id) not in retained
        ]
        if not pending:
            break
        for start in range(0, len(pending), DELETE_BATCH_SIZE):
            batch = pending[start : start + DELETE_BATCH_SIZE]
            result = store.delete_versions(batch)
            failures = []
            deleted_pairs = set(result.deleted)
            for error in result.errors:
                # Some servers (moto) omit the VersionId of a refused entry: every version of
                # the key in this batch that was not reported deleted is a candidate.
                candidates = (
                    [(error.key, error.version_id)]
                    if error.version_id
                    else [p for p in batch if p[0] == error.key and p not in deleted_pairs]
                )
                for key, version_id in candidates:
                    until = locks.retained_until(item.location, key, version_id)
                    if until is None:
                        failures.append(f"{key} ({version_id}): {error.code} {error.message}")
                        continue
                    item.retained.append(
                        {"key": key, "version_id": version_id, "retain_until": until}
                    )
                    retained.add((key, version_id or ""))
            deleted = len(result.deleted)
            item.versions_deleted += deleted
            item.save(update_fields=["versions_deleted", "retained"])
            claims.heartbeat(
                DeletionRequest.objects.filter(pk=request.pk),
                versions_deleted=F("versions_deleted") + deleted,
            )
            if failures:
                raise DeletionFailed(
                    f"{item.location.name} refused {len(failures)} deletion(s): {failures[0]}"
                )
            if after_batch is not None:
                after_batch(item, deleted)
    else:
        raise DeletionFailed(f"Objects keep appearing under {item.prefix} on {item.location.name}.")
    item.done_at = timezone.now()
    item.save(update_fields=["done_at"])


def _drop_database_item(request: DeletionRequest, item: DeletionItem) -> None:
    try:
        existed = database_exists(item.location, item.prefix)
        database_drop(item.location, item.prefix)
    except SourceUnreachable as exc:
        raise DeletionDeferred(f"{item.location.name}: {exc}") from exc
    except SourceError as exc:
        raise DeletionFailed(f"{item.location.name} refused to drop {item.prefix}: {exc}") from exc
    item.versions_deleted += int(existed)
    item.done_at = timezone.now()
    item.save(update_fields=["versions_deleted", "done_at"])
    claims.heartbeat(
        DeletionRequest.objects.filter(pk=request.pk),
        versions_deleted=F("versions_deleted") + int(existed),
    )


def _scratch_copies_remove(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """What the worker's scratch holds of these datasets is a copy too: the git mirrors backups
    keep (removed on the host that holds them; one on another worker host fails the
    verification) and SaaS exports still waiting for their backup."""
    for dataset in datasets:
        mirror_cache_remove(dataset, removal=f"removed by deletion request {request.public_id}")
        export_inbox_remove(dataset)


def _finish(
    request: DeletionRequest, items: Sequence[DeletionItem], report: dict[str, Any]
) -> None:
    from lifecycle.services.certificates import deletion_certificate_issue

    now = timezone.now()
    datasets = request_datasets(request)
    retained_until = [
        r["retain_until"]
        for item in items
        for r in item.retained
        if r["retain_until"][:1].isdigit()
    ]
    with transaction.atomic():
        request = _lock_request(request)
        request.verification = report
        request.executed_at = request.executed_at or now
        if not report["ok"]:
            request.state = DeletionState.FAILED
            request.error = "Verification found data or keys left; see the verification report."
            request.heartbeat_at = None
            request.save()
            return
        request.state = DeletionState.VERIFIED
        request.verified_at = now
        request.heartbeat_at = None
        request.follow_up_at = (
            datetime.fromisoformat(min(retained_until)) if retained_until else None
        )
        request.save()
        schedules_stop(datasets=datasets)
        _datasets_state_set(request, datasets, LifecycleState.DELETED)
        # The folders restores wrote were items of this request: deleted and re-listed above.
        copies_forget(
            datasets=datasets,
            removal=f"deleted by deletion request {request.public_id}",
            now=now,
        )
        if not hasattr(request, "certificate"):
            deletion_certificate_issue(request)


def deletion_request_execute(
    public_id: str, *, after_batch: AfterBatch | None = None
) -> DeletionRequest:
    """Carry out an approved request; idempotent and resumable. A finished request or one held
    by a live worker returns at once. Refused (409) while a legal hold covers the scope."""
    request = _claim(public_id, timezone.now())
    if request is None:
        return DeletionRequest.objects.get(public_id=public_id)
    try:
        datasets = request_datasets(request)
        checks_record(request, blocking_checks(datasets, "executing a deletion"))
        _prepare(request, datasets)
        items = _items_from_plan(request)
        _destroy_database_keys(request, datasets)
        locks = VersionLocks()
        for item in items:
            if item.done_at is None:
                _delete_item(request, item, locks, after_batch)
        _scratch_copies_remove(request, datasets)
        _finish(request, items, deletion_verify(request, items))
    except (LegalHoldActive, RetentionActive) as exc:
        _release(request, state=DeletionState.APPROVED, error=exc.message)
        raise
    except (EndpointUnreachable, DeletionDeferred) as exc:
        _release(request, error=f"retrying: {exc}")
        raise DeletionDeferred(str(exc)) from exc
    except (DeletionFailed, StorageError, Conflict) as exc:
        _release(request, state=DeletionState.FAILED, error=str(exc))
    except BaseException:
        # A crash: hand the claim back so a redelivery (or the recovery beat) resumes at once.
        _release(request, error="interrupted; will resume")
        raise
    return DeletionRequest.objects.get(pk=request.pk)


def deletions_recover(now: datetime | None = None) -> list[str]:
    """Every minute: re-enqueue approved requests and executions whose worker died."""
    now = now or timezone.now()
    requests = DeletionRequest.objects.unscoped_for_system_task()
    stuck = claims.stuck(requests, DELETION_CLAIM, now=now).values_list("public_id", flat=True)
    ids = [str(p) for p in stuck]
    for public_id in ids:
        execution_enqueue(public_id)
    return ids


def deletion_follow_ups_run(now: datetime | None = None) -> list[str]:
    """Daily: for verified requests whose object lock has expired, delete the retained
    versions (inside the plan's prefixes only) and record what was removed."""
    now = now or timezone.now()
    done = []
    due = DeletionRequest.objects.unscoped_for_system_task().filter(
        state=DeletionState.VERIFIED, follow_up_at__lte=now
    )
    locks = VersionLocks()
    for request in due:
        items = list(request.items.select_related("location", "dataset"))
        for item in items:
            if not item.retained:
                continue
            item.retained = []
            item.save(update_fields=["retained"])
            _delete_item(request, item, locks, None)
        report = deletion_verify(request, items)
        still = [
            r["retain_until"] for i in items for r in i.retained if r["retain_until"][:1].isdigit()
        ]
        request.verification = {**request.verification, "follow_up": report}
        request.follow_up_at = datetime.fromisoformat(min(still)) if still else None
        request.save(update_fields=["verification", "follow_up_at"])
        done.append(str(request.public_id))
    return done


