"""Drafting and deciding: a lead with `manage` or an admin asks, an admin who did not ask
approves (four eyes), the daily task drafts what obligations make due."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from backups.models import AlertKind, Severity
from backups.services.alerts import alert_clear, alert_raise
from clients.models import (
    DATABASE_KINDS,
    Client,
    Dataset,
    Engagement,
)
from kernel.exceptions import (
    Conflict,
    SelfApprovalForbidden,
    ValidationFailed,
)
from kernel.tenancy import Actor
from lifecycle.models import (
    AccessAction,
    DeletionApproval,
    DeletionDecision,
    DeletionRequest,
    DeletionScope,
    DeletionSettings,
    DeletionState,
    ObligationKind,
    RetentionObligation,
)
from lifecycle.services.access.outbox import access_event_record
from lifecycle.services.deletion.common import (
    OPEN_STATES,
    _lock_request,
    _scope_datasets,
    blocking_checks,
    checks_record,
    execution_enqueue,
    request_datasets,
)
from lifecycle.services.deletion.plan import deletion_plan_compute

logger = logging.getLogger(__name__)


# --- drafting and deciding ---


def _incident(request: DeletionRequest) -> str:
    return f"deletion-awaiting:{request.public_id}"


def _awaiting_alert(request: DeletionRequest) -> None:
    """Tell the owners and admins (and the dataset's owner) that a deletion awaits their
    decision: an alert, so the notice goes through the alert delivery path (e-mail and webhook,
    claimed once, retried with backoff, header-safe subjects) and resolves with the decision."""
    totals = request.plan.get("totals", {})
    alert_raise(
        organization=request.organization,
        kind=AlertKind.DELETION_AWAITING,
        incident_key=_incident(request),
        title=f"Deletion awaiting approval: {request.client.name}",
        message=(
            f"A deletion of {request.get_scope_display().lower()} data of {request.client.name} "
            f"awaits approval. Reason: {request.reason}. Plan: "
            f"{len(request.plan.get('datasets', []))} dataset(s), "
            f"{totals.get('versions', 0)} object versions, "
            f"{totals.get('delete_markers', 0)} delete markers, {totals.get('bytes', 0)} bytes, "
            f"{len(request.plan.get('copies', []))} copies the product made. "
            f"Request {request.public_id}."
        ),
        severity=Severity.MEDIUM,
        client=request.client,
        dataset=request.dataset,
    )


def _decided(request: DeletionRequest, resolution: str) -> None:
    alert_clear(
        organization=request.organization, incident_key=_incident(request), resolution=resolution
    )


def _scope_checked(
    *,
    actor: Actor,
    client: Client,
    engagement: Engagement | None,
    dataset: Dataset | None,
    drop_primary_databases: bool,
) -> tuple[str, list[Dataset]]:
    """The scope and its live datasets, as a request of it would be checked: `manage` on the
    scope, the engagement and dataset of this client, something left, a database to drop."""
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
    if drop_primary_databases and not any(d.location.kind in DATABASE_KINDS for d in datasets):
        raise ValidationFailed(
            "No dataset in this scope is a database.",
            fields={"drop_primary_databases": "Only a database dataset's primary can be dropped."},
        )
    return scope, datasets


def deletion_plan_preview(
    *,
    actor: Actor,
    client: Client,
    engagement: Engagement | None = None,
    dataset: Dataset | None = None,
    drop_primary_databases: bool = False,
) -> dict[str, Any]:
    """The plan a request of this scope would carry, before it is asked for: the same checks
    as `deletion_request_create` (who may ask, the scope) and the same planning, nothing
    saved. Legal holds are not checked here: the request says so when it is asked for."""
    _, datasets = _scope_checked(
        actor=actor,
        client=client,
        engagement=engagement,
        dataset=dataset,
        drop_primary_databases=drop_primary_databases,
    )
    return deletion_plan_compute(datasets, drop_primary_databases=drop_primary_databases)


@transaction.atomic
def deletion_request_create(
    *,
    actor: Actor,
    client: Client,
    reason: str,
    engagement: Engagement | None = None,
    dataset: Dataset | None = None,
    obligation: RetentionObligation | None = None,
    drop_primary_databases: bool = False,
) -> DeletionRequest:
    """A lead with `manage` or an admin asks to delete a client's, an engagement's or a
    dataset's data. Refused (409) under a legal hold or a running retain obligation; the plan
    is computed now, so the approver sees every copy."""
    scope, datasets = _scope_checked(
        actor=actor,
        client=client,
        engagement=engagement,
        dataset=dataset,
        drop_primary_databases=drop_primary_databases,
    )
    checked = blocking_checks(datasets, "drafting a deletion")
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
        drop_primary_databases=drop_primary_databases,
        plan=deletion_plan_compute(datasets, drop_primary_databases=drop_primary_databases),
        plan_computed_at=timezone.now(),
        checks=[checked],
    )
    request.full_clean()
    request.save()
    _awaiting_alert(request)
    return request


@transaction.atomic
def deletion_request_approve(
    *,
    actor: Actor,
    request: DeletionRequest,
    comment: str = "",
    enqueue: bool = True,
    confirm_primary_drop: bool = False,
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
    checks_record(request, blocking_checks(request_datasets(request), "approving a deletion"))
    if request.drop_primary_databases and not confirm_primary_drop:
        names = ", ".join(p["database"] for p in request.plan.get("primaries_dropped", []))
        raise ValidationFailed(
            f"This plan also drops the client's own database(s) {names}; confirm that line "
            "to approve.",
            fields={"confirm_primary_drop": f"Confirm that {names} is dropped."},
        )
    DeletionApproval.objects.create(
        request=request,
        decided_by=actor.user,
        decision=DeletionDecision.APPROVE,
        comment=comment,
        primary_drop_confirmed=bool(request.drop_primary_databases and confirm_primary_drop),
    )
    approvals = request.approvals.filter(decision=DeletionDecision.APPROVE).count()
    if approvals >= request.approvals_required:
        request.state = DeletionState.APPROVED
        request.decided_at = timezone.now()
        request.save(update_fields=["state", "decided_at"])
        _decided(request, f"Approved by {actor.user.get_username() if actor.user else 'system'}.")
        if enqueue:
            execution_enqueue(str(request.public_id))
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
    _decided(request, f"Rejected by {actor.user.get_username() if actor.user else 'system'}.")
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
