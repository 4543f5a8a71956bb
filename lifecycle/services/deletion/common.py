"""What every step of a deletion shares: its errors, its scope, the request's lock, and the
blocking checks (legal holds, retention obligations) each step runs and records."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from django.db.models import Q
from django.utils import timezone

from clients.models import (
    Client,
    Dataset,
    Engagement,
    LifecycleState,
)
from kernel import claims
from kernel.exceptions import (
    LegalHoldActive,
    RetentionActive,
)
from lifecycle.models import (
    RETAIN_KINDS,
    DeletionItem,
    DeletionRequest,
    DeletionState,
    LegalHold,
    RetentionObligation,
)
from lifecycle.services.obligations import retentions_covering

logger = logging.getLogger(__name__)

# A request waits approved and is held executing (kernel.claims: claim, heartbeat, recovery);
# an approval whose message was lost is sent again once it is STALE_AFTER old.
DELETION_CLAIM = claims.ClaimRule(
    state_field="state",
    waiting=DeletionState.APPROVED,
    held=DeletionState.EXECUTING,
    waiting_since="decided_at",
    lost_after=claims.STALE_AFTER,
)
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


def _holds_over(datasets: Sequence[Dataset]) -> list[LegalHold]:
    """Every legal hold, active or released, over any of these datasets."""
    return list(
        LegalHold.objects.filter(client_id__in={d.client_id for d in datasets})
        .filter(Q(dataset__isnull=True) | Q(dataset_id__in=[d.pk for d in datasets]))
        .select_related("client", "dataset")
        .order_by("placed_at", "id")
    )


def _obligations_over(datasets: Sequence[Dataset]) -> list[RetentionObligation]:
    """Every retention obligation over any of these datasets (client-wide, the engagement's, or
    the dataset's own)."""
    engagement_ids = {d.engagement_id for d in datasets if d.engagement_id}
    return list(
        RetentionObligation.objects.filter(client_id__in={d.client_id for d in datasets})
        .filter(
            Q(dataset_id__in=[d.pk for d in datasets])
            | Q(dataset__isnull=True, engagement__isnull=True)
            | Q(dataset__isnull=True, engagement_id__in=engagement_ids)
        )
        .order_by("due_on", "id")
    )


def _obligation_state(obligation: RetentionObligation, today: date) -> str:
    due = obligation.due_on
    if obligation.kind in RETAIN_KINDS:
        if due is not None and due > today:
            return f"in force until {due:%Y-%m-%d}"
        return f"ended {due:%Y-%m-%d}" if due is not None else "ended"
    if due is None:
        return "not due yet (the engagement has not ended)"
    return f"due {due:%Y-%m-%d}" if due <= today else f"due on {due:%Y-%m-%d}"


def blocking_checks(datasets: Sequence[Dataset], step: str) -> dict[str, Any]:
    """The checks every step makes: an active legal hold (409) or a retain obligation still in
    force (409) blocks it. Returns what the check found — every hold and obligation over the
    scope, with its state at that moment — for the request's record and its certificate."""
    now = timezone.now()
    holds = _holds_over(datasets)
    active = [h for h in holds if h.is_active]
    if active:
        hold = active[0]
        target = hold.dataset.name if hold.dataset is not None else f"client {hold.client.name}"
        raise LegalHoldActive(
            f"A legal hold on {target} blocks {step}: {hold.reason} "
            f"(placed {hold.placed_at:%Y-%m-%d}). Release it first."
        )
    retained = retentions_covering(datasets, now.date())
    if retained:
        ob = retained[0]
        raise RetentionActive(
            f"A {ob.get_kind_display().lower()} obligation ({ob.get_source_display()}"
            f"{': ' + ob.source_reference if ob.source_reference else ''}) keeps this data "
            f"until {ob.due_on:%Y-%m-%d}; {step} is blocked until then."
        )
    return {
        "step": step,
        "at": now.isoformat(),
        "result": "passed: no active legal hold, no retention in force",
        "legal_holds": [
            {
                "id": str(h.public_id),
                "scope": f"dataset {h.dataset.name}" if h.dataset is not None else "client",
                "reason": h.reason,
                "placed_at": h.placed_at.isoformat(),
                "released_at": h.released_at.isoformat() if h.released_at else None,
                "state": "active" if h.is_active else "released",
            }
            for h in holds
        ],
        "obligations": [
            {
                "id": str(o.public_id),
                "kind": o.kind,
                "source": o.source,
                "source_reference": o.source_reference,
                "due_on": o.due_on.isoformat() if o.due_on else None,
                "state": _obligation_state(o, now.date()),
            }
            for o in _obligations_over(datasets)
        ],
    }


def checks_record(request: DeletionRequest, record: dict[str, Any]) -> None:
    """Append a step's check to the request (read again under the caller's lock)."""
    checks = list(DeletionRequest.objects.filter(pk=request.pk).values_list("checks", flat=True)[0])
    checks.append(record)
    DeletionRequest.objects.filter(pk=request.pk).update(checks=checks)
    request.checks = checks


def execution_enqueue(public_id: str) -> None:
    """Execute the request once the caller's transaction commits (at once outside one)."""
    from lifecycle.tasks import deletion_request_execute_task

    deletion_request_execute_task.delay_on_commit(public_id)  # type: ignore[attr-defined]  # stubs lag


def _lock_request(request: DeletionRequest) -> DeletionRequest:
    locked: DeletionRequest = (
        DeletionRequest.objects.select_for_update().select_related("client").get(pk=request.pk)
    )
    return locked


def deletion_datasets_of(requests: Iterable[DeletionRequest]) -> dict[int, list[str]]:
    """Dataset names per request (pages)."""
    return {r.pk: [d["name"] for d in r.plan.get("datasets", [])] for r in requests}
