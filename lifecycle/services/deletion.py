"""Deletion requests: plan every copy, four-eyes approval, resumable execution, verification.

Execution is idempotent and resumable: the request is claimed with a conditional update (one
worker at a time, a dead worker's claim goes stale after `STALE_AFTER`), the plan's prefixes are
fixed when the request is drafted, and each round re-lists what remains under them before
deleting, so a redelivered task deletes only what is still there and never anything outside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agencyops.crypto import master_key
from agencyops.exceptions import (
    Conflict,
    LegalHoldActive,
    RetentionActive,
    SelfApprovalForbidden,
    ValidationFailed,
)
from agencyops.tenancy import Actor
from backups import engine
from backups.engine.crypto import DatasetKeys, decrypt_chunk
from backups.models import BackupSchedule, DatasetProtection, RunTarget, Snapshot
from backups.services import location_key, repository_base, store_for_location
from backups.services.policies import dataset_key_context
from backups.storage import (
    DELETE_BATCH_SIZE,
    EndpointUnreachable,
    ObjectStore,
    ObjectVersion,
    StorageError,
)
from clients.models import (
    Client,
    Dataset,
    Engagement,
    LifecycleState,
    LocationKind,
    StorageLocation,
)
from clients.services import location_credentials
from lifecycle.models import (
    AccessAction,
    DeletionApproval,
    DeletionDecision,
    DeletionItem,
    DeletionRequest,
    DeletionScope,
    DeletionSettings,
    DeletionState,
    ItemRole,
    ObligationKind,
    RetentionObligation,
)
from lifecycle.services.access_outbox import access_event_record
from lifecycle.services.obligations import holds_covering, retentions_covering

logger = logging.getLogger(__name__)

# A claim whose heartbeat is older than this belongs to a dead worker and may be taken over.
STALE_AFTER = timedelta(seconds=30)
# Rounds of list-then-delete per prefix before giving up on objects that keep reappearing.
MAX_ROUNDS = 20
OPEN_STATES = (DeletionState.DRAFTED, DeletionState.APPROVED, DeletionState.EXECUTING)
AfterBatch = Callable[[DeletionItem, int], None]


class DeletionFailed(Exception):
    """Storage refused to delete versions for a reason other than object lock."""


class DeletionDeferred(Exception):
    """Transient: the endpoint is unreachable or a backup of the scope is still running."""


# --- scope and checks ---


def _scope_datasets(
    client: Client, engagement: Engagement | None, dataset: Dataset | None
) -> list[Dataset]:
    if dataset is not None:
        qs = Dataset.objects.filter(pk=dataset.pk)
    elif engagement is not None:
        qs = Dataset.objects.filter(engagement=engagement)
    else:
        qs = Dataset.objects.filter(client=client)
    return list(
        qs.exclude(lifecycle_state=LifecycleState.DELETED)
        .select_related("organization", "client", "location")
        .order_by("pk")
    )


def request_datasets(request: DeletionRequest) -> list[Dataset]:
    """The datasets the plan names (fixed when drafted)."""
    ids = [entry["pk"] for entry in request.plan.get("datasets", [])]
    return list(
        Dataset.objects.filter(pk__in=ids)
        .select_related("organization", "client", "location")
        .order_by("pk")
    )


def _refuse_if_blocked(datasets: Sequence[Dataset], step: str) -> None:
    """A legal hold (409) or a running retain obligation (409) blocks every step."""
    holds = holds_covering(datasets)
    if holds:
        hold = holds[0]
        target = hold.dataset.name if hold.dataset is not None else f"client {hold.client.name}"
        raise LegalHoldActive(
            f"A legal hold on {target} blocks {step}: {hold.reason} "
            f"(placed {hold.placed_at:%Y-%m-%d}). Release it first."
        )
    retained = retentions_covering(datasets, timezone.now().date())
    if retained:
        ob = retained[0]
        raise RetentionActive(
            f"A {ob.get_kind_display().lower()} obligation ({ob.get_source_display()}"
            f"{': ' + ob.source_reference if ob.source_reference else ''}) keeps this data "
            f"until {ob.due_on:%Y-%m-%d}; {step} is blocked until then."
        )


# --- the plan ---


def _primary_prefix(dataset: Dataset) -> str | None:
    path = dataset.path.strip("/")
    if not path:
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


def _guard_other_datasets(dataset: Dataset, prefix: str, in_scope: set[int]) -> None:
    """A primary prefix that contains another dataset's primary copy is not deleted."""
    others = Dataset.objects.filter(location=dataset.location).exclude(pk__in=in_scope)
    for other in others.exclude(lifecycle_state=LifecycleState.DELETED):
        other_prefix = _primary_prefix(other)
        if other_prefix is not None and other_prefix.startswith(prefix):
            raise Conflict(
                f"The primary path of {dataset.name} contains the data of {other.name}; "
                "include it in the request or move it first."
            )


def deletion_plan_compute(datasets: Sequence[Dataset]) -> dict[str, Any]:
    """Every copy, before anyone approves: each dataset's primary objects (all versions and
    delete markers), each backup target's repository prefix (all versions) and the keys, with
    counts and bytes per location."""
    in_scope = {d.pk for d in datasets}
    plan: dict[str, Any] = {"datasets": [], "locations": [], "keys": []}
    totals = {"objects": 0, "versions": 0, "delete_markers": 0, "bytes": 0}
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
            _guard_other_datasets(dataset, primary, in_scope)
            entries.append((dataset.location, ItemRole.PRIMARY, primary))
        entries.extend(
            (loc, ItemRole.BACKUP, repository_base(loc, dataset) + "/")
            for loc in _backup_locations(dataset)
        )
        for location, role, prefix in entries:
            try:
                counts = _count(store_for_location(location), prefix)
            except StorageError as exc:
                raise Conflict(f"The plan could not list {location.name}: {exc}") from None
            for name in totals:
                totals[name] += counts[name]
            plan["locations"].append(
                {
                    "dataset": str(dataset.public_id),
                    "location_pk": location.pk,
                    "location": _describe_location(location),
                    "role": role,
                    "prefix": prefix,
                    **counts,
                }
            )
            if role == ItemRole.BACKUP:
                plan["keys"].append(
                    {
                        "dataset": str(dataset.public_id),
                        "where": f"{location.name}: {prefix}key",
                    }
                )
        if primary is None:
            plan.setdefault("notes", []).append(
                f"{dataset.name} has no primary path; its primary copy is not deleted."
            )
        plan["keys"].append({"dataset": str(dataset.public_id), "where": "database (wrapped)"})
    plan["totals"] = totals
    return plan


# --- drafting and deciding ---


def _admin_emails(request: DeletionRequest) -> list[str]:
    users = get_user_model().objects.filter(
        membership__organization_id=request.organization_id,
        membership__role__in=("owner", "admin"),
    )
    return sorted({u.email for u in users if u.email})


def _notify_admins(request_id: int) -> None:
    request = DeletionRequest.objects.select_related("client").get(pk=request_id)
    recipients = _admin_emails(request)
    if not recipients:
        return
    totals = request.plan.get("totals", {})
    send_mail(
        subject=f"Deletion awaiting approval: {request.client.name}",
        message=(
            f"A deletion of {request.get_scope_display().lower()} data of {request.client.name} "
            f"awaits approval.\nReason: {request.reason}\n"
            f"Plan: {len(request.plan.get('datasets', []))} dataset(s), "
            f"{totals.get('versions', 0)} object versions, "
            f"{totals.get('delete_markers', 0)} delete markers, {totals.get('bytes', 0)} bytes.\n"
            f"Request id: {request.public_id}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
        fail_silently=True,
    )


@transaction.atomic
def deletion_request_create(
    *,
    actor: Actor,
    client: Client,
    reason: str,
    engagement: Engagement | None = None,
    dataset: Dataset | None = None,
    obligation: RetentionObligation | None = None,
) -> DeletionRequest:
    """A lead with `manage` or an admin asks to delete a client's, an engagement's or a
    dataset's data. Refused (409) under a legal hold or a running retain obligation; the plan
    is computed now, so the approver sees every copy."""
    actor.require_level(
        "manage",
        client_id=client.pk,
        dataset_id=dataset.pk if dataset is not None else None,
        action="request deletions",
    )
    if engagement is not None and engagement.client_id != client.pk:
        raise ValidationFailed("Another client's engagement.", fields={"engagement": "Mismatch."})
    if dataset is not None and dataset.client_id != client.pk:
        raise ValidationFailed("Another client's dataset.", fields={"dataset": "Mismatch."})
    scope = (
        DeletionScope.DATASET
        if dataset is not None
        else DeletionScope.ENGAGEMENT
        if engagement is not None
        else DeletionScope.CLIENT
    )
    datasets = _scope_datasets(client, engagement, dataset)
    if not datasets:
        raise ValidationFailed("Nothing to delete: no dataset in this scope is left.")
    _refuse_if_blocked(datasets, "drafting a deletion")
    pks = [d.pk for d in datasets]
    for open_request in DeletionRequest.objects.filter(client=client, state__in=OPEN_STATES):
        if {e["pk"] for e in open_request.plan.get("datasets", [])} & set(pks):
            raise Conflict(
                f"Deletion request {open_request.public_id} already covers these datasets."
            )
    settings_row = DeletionSettings.objects.filter(organization_id=actor.organization_id).first()
    request = DeletionRequest(
        organization=actor.organization,
        client=client,
        engagement=engagement if dataset is None else dataset.engagement,
        dataset=dataset,
        scope=scope,
        reason=reason,
        obligation=obligation,
        requested_by=actor.user,
        approvals_required=settings_row.approvals_required if settings_row else 1,
        plan=deletion_plan_compute(datasets),
        plan_computed_at=timezone.now(),
    )
    request.full_clean()
    request.save()
    transaction.on_commit(partial(_notify_admins, request.pk))
    return request


def _lock_request(request: DeletionRequest) -> DeletionRequest:
    locked: DeletionRequest = (
        DeletionRequest.objects.select_for_update().select_related("client").get(pk=request.pk)
    )
    return locked


@transaction.atomic
def deletion_request_approve(
    *, actor: Actor, request: DeletionRequest, comment: str = "", enqueue: bool = True
) -> DeletionRequest:
    """An owner or admin who did not request it approves (403 for the requester). With a second
    approver required, two distinct admins must. Refused (409) under a legal hold. Every
    decision is recorded; the last approval enqueues execution."""
    actor.require_admin("approve deletions")
    request = _lock_request(request)
    if request.requested_by_id is not None and request.requested_by_id == actor.user_id:
        raise SelfApprovalForbidden(
            "You requested this deletion, so you cannot approve it: another owner or admin "
            "must (four eyes)."
        )
    if request.state != DeletionState.DRAFTED:
        raise Conflict(
            f"The request is {request.get_state_display().lower()}, not awaiting approval."
        )
    if request.approvals.filter(decided_by_id=actor.user_id).exists():
        raise Conflict("You already approved this request; another admin must approve it too.")
    _refuse_if_blocked(request_datasets(request), "approving a deletion")
    DeletionApproval.objects.create(
        request=request, decided_by=actor.user, decision=DeletionDecision.APPROVE, comment=comment
    )
    approvals = request.approvals.filter(decision=DeletionDecision.APPROVE).count()
    if approvals >= request.approvals_required:
        request.state = DeletionState.APPROVED
        request.decided_at = timezone.now()
        request.save(update_fields=["state", "decided_at"])
        if enqueue:
            from lifecycle.tasks import deletion_request_execute_task

            deletion_request_execute_task.delay_on_commit(  # type: ignore[attr-defined]  # stubs lag
                str(request.public_id)
            )
    access_event_record(
        organization=request.organization,
        action=AccessAction.DELETION_APPROVED,
        actor=actor,
        client=request.client,
        dataset=request.dataset,
        details={
            "deletion_request": str(request.public_id),
            "approvals": approvals,
            "required": request.approvals_required,
            "comment": comment,
        },
    )
    return request


@transaction.atomic
def deletion_request_reject(
    *, actor: Actor, request: DeletionRequest, comment: str = ""
) -> DeletionRequest:
    """An owner or admin rejects a drafted request with a comment; the decision is recorded."""
    actor.require_admin("reject deletions")
    request = _lock_request(request)
    if request.state != DeletionState.DRAFTED:
        raise Conflict(
            f"The request is {request.get_state_display().lower()}, not awaiting approval."
        )
    if request.approvals.filter(decided_by_id=actor.user_id).exists():
        raise Conflict("You already decided on this request.")
    DeletionApproval.objects.create(
        request=request, decided_by=actor.user, decision=DeletionDecision.REJECT, comment=comment
    )
    request.state = DeletionState.REJECTED
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_at"])
    return request


def _obligation_reason(obligation: RetentionObligation) -> str:
    reference = f": {obligation.source_reference}" if obligation.source_reference else ""
    return (
        f"{obligation.get_kind_display()} ({obligation.get_source_display()}{reference}), "
        f"due {obligation.due_on:%Y-%m-%d}"
    )


def deletion_requests_draft_due(today: date | None = None) -> list[DeletionRequest]:
    """Daily: draft a request for every delete-after-engagement obligation that came due, and
    notify the organization's admins. Idempotent (an obligation drafts once); an obligation
    under a legal hold or a retention waits for the next day."""
    today = today or timezone.now().date()
    drafted = []
    due = (
        RetentionObligation.objects.unscoped_for_system_task()
        .filter(
            kind=ObligationKind.DELETE_AFTER_ENGAGEMENT,
            due_on__lte=today,
            drafted_request__isnull=True,
        )
        .select_related("organization", "client", "engagement", "dataset")
        .order_by("pk")
    )
    for obligation in due:
        actor = Actor.system(obligation.organization)
        try:
            with transaction.atomic():
                request = deletion_request_create(
                    actor=actor,
                    client=obligation.client,
                    engagement=obligation.engagement if obligation.dataset_id is None else None,
                    dataset=obligation.dataset,
                    obligation=obligation,
                    reason=_obligation_reason(obligation),
                )
                RetentionObligation.objects.filter(
                    pk=obligation.pk, drafted_request__isnull=True
                ).update(drafted_request=request)
        except (Conflict, ValidationFailed) as exc:
            logger.info("obligation %s not drafted: %s", obligation.public_id, exc.message)
            continue
        drafted.append(request)
    return drafted


# --- execution ---


def _claim(public_id: str, now: datetime) -> DeletionRequest | None:
    """Win the request once: approved, or executing under a dead worker's stale heartbeat."""
    claimable = Q(state=DeletionState.APPROVED) | Q(
        Q(state=DeletionState.EXECUTING)
        & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER))
    )
    won = (
        DeletionRequest.objects.filter(public_id=public_id)
        .filter(claimable)
        .update(
            state=DeletionState.EXECUTING,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
    )
    if not won:
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
    DeletionRequest.objects.filter(pk=request.pk).update(
        state=state, heartbeat_at=None, error=error[:4000]
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


def _prepare(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """Stop new copies: datasets become deletion_pending and lose their schedules. A backup
    still running would write behind the deletion, so execution waits for it."""
    pks = [d.pk for d in datasets]
    with transaction.atomic():
        Dataset.objects.filter(pk__in=pks).exclude(lifecycle_state=LifecycleState.DELETED).update(
            lifecycle_state=LifecycleState.DELETION_PENDING
        )
        BackupSchedule.objects.filter(dataset_id__in=pks).delete()
    if RunTarget.objects.filter(dataset_id__in=pks, active=True).exists():
        raise DeletionDeferred("A backup of a dataset in scope is still running.")
    total = sum(e["versions"] + e["delete_markers"] for e in request.plan.get("locations", []))
    DeletionRequest.objects.filter(pk=request.pk, versions_total__lt=total).update(
        versions_total=total
    )


def _destroy_database_keys(request: DeletionRequest, datasets: Sequence[Dataset]) -> None:
    """Crypto-shred first: the wrapped data keys in the database are emptied, so whatever
    storage keeps for a while (object lock, archive tiers) is unreadable from now on."""
    now = timezone.now()
    DatasetProtection.objects.filter(dataset__in=list(datasets), wrapped_key__isnull=False).update(
        wrapped_key=None, key_destroyed_at=now
    )
    DeletionRequest.objects.filter(pk=request.pk, keys_destroyed_at__isnull=True).update(
        keys_destroyed_at=now
    )


class _LockInspector:
    """Asks S3 why a version could not be deleted: the object-lock retention date or a legal
    hold on the version. (The ObjectStore interface has no call for it; see the report.)"""

    def __init__(self) -> None:
        self._clients: dict[int, Any] = {}

    def _client(self, location: StorageLocation) -> Any:
        if location.pk not in self._clients:
            credentials = location_credentials(location) or {}
            self._clients[location.pk] = boto3.session.Session(
                aws_access_key_id=credentials.get("access_key_id"),
                aws_secret_access_key=credentials.get("secret_access_key"),
                region_name=location.region or None,
            ).client(
                "s3",
                endpoint_url=location.endpoint_url or None,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._clients[location.pk]

    def retained_until(
        self, location: StorageLocation, key: str, version_id: str | None
    ) -> str | None:
        if location.kind != LocationKind.S3 or not version_id:
            return None
        try:
            head = self._client(location).head_object(
                Bucket=location.bucket, Key=key, VersionId=version_id
            )
        except (ClientError, BotoCoreError):
            return None
        until = head.get("ObjectLockRetainUntilDate")
        if isinstance(until, datetime) and until > timezone.now():
            return until.astimezone(UTC).isoformat()
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return "storage legal hold"
        return None


def _delete_item(
    request: DeletionRequest,
    item: DeletionItem,
    inspector: _LockInspector,
    after_batch: AfterBatch | None,
) -> None:
    """List what remains under the item's prefix, delete it in batches of 1,000 versions, and
    repeat until nothing deletable remains. Lock-refused versions are recorded, not retried."""
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
                    until = inspector.retained_until(item.location, key, version_id)
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
            DeletionRequest.objects.filter(pk=request.pk).update(
                versions_deleted=F("versions_deleted") + deleted, heartbeat_at=timezone.now()
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


def _key_readable(dataset: Dataset, store: ObjectStore, base: str) -> bool:
    """Whether any copy of the dataset key still opens (database or the target's `key`)."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    if protection is not None and protection.wrapped_key:
        return True
    try:
        engine.load_data_key(store, base, master_key(), context=dataset_key_context(dataset))
    except (engine.EngineError, StorageError):
        return False
    return True


def _verify(request: DeletionRequest, items: Sequence[DeletionItem]) -> dict[str, Any]:
    """List every prefix again, all versions: zero may remain but lock-retained versions;
    the keys are gone; a retained chunk does not decrypt."""
    report: dict[str, Any] = {"locations": [], "ok": True, "method": "list_object_versions"}
    for item in items:
        store = store_for_location(item.location)
        retained = {(r["key"], r["version_id"]) for r in item.retained}
        remaining = list(_versions_under(store, item.prefix))
        unexpected = [v for v in remaining if (v.key, v.version_id) not in retained]
        entry: dict[str, Any] = {
            "location": item.location.name,
            "role": item.role,
            "prefix": item.prefix,
            "versions_remaining": len(remaining),
            "unexpected": [f"{v.key}@{v.version_id}" for v in unexpected[:20]],
            "retained_by_lock": [
                {
                    **r,
                    "status": "retained by lock until "
                    + r["retain_until"]
                    + ", unreadable: key destroyed",
                }
                for r in item.retained
            ],
        }
        if item.role == ItemRole.BACKUP:
            base = item.prefix.rstrip("/")
            entry["key_readable"] = _key_readable(item.dataset, store, base)
            chunk = next((r for r in item.retained if "/chunks/" in r["key"]), None)
            if chunk is not None:
                entry["retained_chunk_decrypts"] = _chunk_decrypts(item.dataset, store, base, chunk)
            if entry["key_readable"] or entry.get("retained_chunk_decrypts"):
                report["ok"] = False
        if unexpected:
            report["ok"] = False
        report["locations"].append(entry)
    datasets = request_datasets(request)
    report["database_keys_destroyed"] = not DatasetProtection.objects.filter(
        dataset__in=datasets, wrapped_key__isnull=False
    ).exists()
    report["ok"] = report["ok"] and report["database_keys_destroyed"]
    return report


def _chunk_decrypts(dataset: Dataset, store: ObjectStore, base: str, chunk: dict[str, Any]) -> bool:
    """Try to open a retained chunk with whatever key is left: it must fail."""
    try:
        data_key = engine.load_data_key(
            store, base, master_key(), context=dataset_key_context(dataset)
        )
        sealed = store.get(chunk["key"])
        keys = DatasetKeys.from_data_key(data_key)
        decrypt_chunk(keys, chunk["key"].rsplit("/", 1)[-1], sealed)
    except (engine.EngineError, StorageError, ValueError):
        return False
    return True


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
        pks = [d.pk for d in datasets]
        Dataset.objects.filter(pk__in=pks).update(lifecycle_state=LifecycleState.DELETED)
        BackupSchedule.objects.filter(dataset_id__in=pks).delete()
        Snapshot.objects.filter(dataset_id__in=pks, forgotten_at__isnull=True).update(
            forgotten_at=now
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
        _refuse_if_blocked(datasets, "executing a deletion")
        _prepare(request, datasets)
        items = _items_from_plan(request)
        _destroy_database_keys(request, datasets)
        inspector = _LockInspector()
        for item in items:
            if item.done_at is None:
                _delete_item(request, item, inspector, after_batch)
        _finish(request, items, _verify(request, items))
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
    from lifecycle.tasks import deletion_request_execute_task

    now = now or timezone.now()
    stuck = DeletionRequest.objects.unscoped_for_system_task().filter(
        Q(state=DeletionState.APPROVED, decided_at__lt=now - STALE_AFTER)
        | Q(state=DeletionState.EXECUTING)
        & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER))
    )
    ids = [str(p) for p in stuck.values_list("public_id", flat=True)]
    for public_id in ids:
        deletion_request_execute_task.delay(public_id)
    return ids


def deletion_follow_ups_run(now: datetime | None = None) -> list[str]:
    """Daily: for verified requests whose object lock has expired, delete the retained
    versions (inside the plan's prefixes only) and record what was removed."""
    now = now or timezone.now()
    done = []
    due = DeletionRequest.objects.unscoped_for_system_task().filter(
        state=DeletionState.VERIFIED, follow_up_at__lte=now
    )
    inspector = _LockInspector()
    for request in due:
        items = list(request.items.select_related("location", "dataset"))
        for item in items:
            if not item.retained:
                continue
            item.retained = []
            item.save(update_fields=["retained"])
            _delete_item(request, item, inspector, None)
        report = _verify(request, items)
        still = [
            r["retain_until"] for i in items for r in i.retained if r["retain_until"][:1].isdigit()
        ]
        request.verification = {**request.verification, "follow_up": report}
        request.follow_up_at = datetime.fromisoformat(min(still)) if still else None
        request.save(update_fields=["verification", "follow_up_at"])
        done.append(str(request.public_id))
    return done


def deletion_datasets_of(requests: Iterable[DeletionRequest]) -> dict[int, list[str]]:
    """Dataset names per request (pages)."""
    return {r.pk: [d["name"] for d in r.plan.get("datasets", [])] for r in requests}
