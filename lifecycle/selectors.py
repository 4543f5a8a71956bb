"""Tenant reads of the lifecycle app, each starting from `visible_to(actor)`."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch, Q, QuerySet

from clients.models import Client, Dataset
from kernel.exceptions import Forbidden
from kernel.tenancy import Actor
from lifecycle.models import (
    AccessEvent,
    DeletionApproval,
    DeletionCertificate,
    DeletionRequest,
    DeletionScope,
    DeletionState,
    LegalHold,
    ProcurementToken,
    RetentionObligation,
)


def access_event_list(*, actor: Actor) -> QuerySet[AccessEvent]:
    """The access log: owners, admins and auditors read all of it; leads the events of their
    granted clients; members read none of it."""
    if actor.role == "member":
        raise Forbidden("Members may not read the access log.")
    return AccessEvent.objects.visible_to(actor).order_by("-seq")


def obligation_list(*, actor: Actor) -> QuerySet[RetentionObligation]:
    """Obligations of the clients the actor sees."""
    qs: QuerySet[RetentionObligation] = RetentionObligation.objects.visible_to(actor)
    return qs.select_related("client", "engagement", "dataset", "drafted_request").order_by(
        "due_on", "id"
    )


def legal_hold_list(*, actor: Actor) -> QuerySet[LegalHold]:
    """Legal holds of the clients the actor sees, newest first."""
    qs: QuerySet[LegalHold] = LegalHold.objects.visible_to(actor)
    return qs.select_related("client", "dataset", "placed_by", "released_by").order_by(
        "-placed_at", "-id"
    )


def legal_hold_active_list(
    *, actor: Actor, client: Client, datasets: Sequence[Dataset] = ()
) -> list[LegalHold]:
    """The active holds the actor sees over a client (client-wide ones) or, with `datasets`,
    also over those datasets: what a banner shows and what blocks a deletion."""
    holds = legal_hold_list(actor=actor).filter(client=client, released_at__isnull=True)
    return list(holds.filter(Q(dataset__isnull=True) | Q(dataset__in=list(datasets))))


def legal_hold_get(*, actor: Actor, public_id: object) -> LegalHold:
    from kernel.tenancy import get_visible_or_404

    return get_visible_or_404(legal_hold_list(actor=actor), public_id)


def obligation_fulfilments(
    *, actor: Actor, obligations: Sequence[RetentionObligation]
) -> dict[int, DeletionRequest]:
    """The verified deletion (with its certificate) that fulfilled each delete obligation:
    the request it drafted, or one asked for by hand over its scope. Keyed by obligation pk."""
    done = [
        r
        for r in deletion_request_list(actor=actor).filter(
            client__in={o.client_id for o in obligations}, state="verified"
        )
        if getattr(r, "certificate", None) is not None
    ]
    found: dict[int, DeletionRequest] = {}
    for obligation in obligations:
        if obligation.kind != "delete_after_engagement":
            continue
        for request in done:
            drafted = obligation.drafted_request_id == request.pk
            by_scope = request.client_id == obligation.client_id and (
                (obligation.dataset_id is not None and request.dataset_id == obligation.dataset_id)
                or (
                    obligation.dataset_id is None
                    and obligation.engagement_id is not None
                    and request.engagement_id == obligation.engagement_id
                    and request.dataset_id is None
                )
                or request.scope == "client"
            )
            if drafted or by_scope:
                found[obligation.pk] = request
                break
    return found


def deletion_request_list(*, actor: Actor) -> QuerySet[DeletionRequest]:
    """Deletion requests of the clients the actor sees, newest first."""
    qs: QuerySet[DeletionRequest] = DeletionRequest.objects.visible_to(actor)
    return (
        qs.select_related("client", "engagement", "dataset", "requested_by", "certificate")
        .prefetch_related(
            Prefetch("approvals", queryset=DeletionApproval.objects.select_related("decided_by"))
        )
        .order_by("-created_at", "-id")
    )


def deletion_request_get(*, actor: Actor, public_id: object) -> DeletionRequest:
    from kernel.tenancy import get_visible_or_404

    return get_visible_or_404(deletion_request_list(actor=actor), public_id)


def deletion_certificate_list(*, actor: Actor) -> QuerySet[DeletionCertificate]:
    qs: QuerySet[DeletionCertificate] = DeletionCertificate.objects.visible_to(actor)
    return qs.select_related("request").order_by("-issued_at", "-id")


# --- procurement evidence ---


def evidence_client_get(*, actor: Actor, public_id: object) -> Client:
    """The client whose evidence is asked for, if the actor may read it: 404 when it is not
    visible (or seen through one dataset's grant only), 403 for a member who sees it."""
    from kernel.tenancy import get_visible_or_404
    from lifecycle.services import evidence_read_check

    client = get_visible_or_404(
        Client.objects.visible_to(actor).select_related("organization"), public_id
    )
    evidence_read_check(actor=actor, client=client)
    return client


def procurement_token_list(*, actor: Actor) -> QuerySet[ProcurementToken]:
    """Every procurement token of the organization, newest first: owners, admins, auditors."""
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors see procurement tokens.")
    qs: QuerySet[ProcurementToken] = ProcurementToken.objects.visible_to(actor)
    return qs.select_related("client", "created_by", "revoked_by").order_by("-created_at", "-id")


def procurement_token_get(*, actor: Actor, public_id: object) -> ProcurementToken:
    """One token: 404 when its client is not visible, 403 for a visible one the actor may not
    manage tokens of (leads, members)."""
    from kernel.tenancy import get_visible_or_404

    qs: QuerySet[ProcurementToken] = ProcurementToken.objects.visible_to(actor)
    token = get_visible_or_404(qs.select_related("client", "created_by", "revoked_by"), public_id)
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors see procurement tokens.")
    return token


def evidence_token_list(*, actor: Actor, client: Client) -> QuerySet[ProcurementToken]:
    """A client's procurement tokens, newest first: for owners, admins and auditors."""
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors see procurement tokens.")
    qs: QuerySet[ProcurementToken] = ProcurementToken.objects.visible_to(actor)
    return qs.filter(client=client).select_related("client", "created_by", "revoked_by")


def dataset_deletion_get(*, actor: Actor, dataset: Dataset) -> DeletionRequest | None:
    """The deletion that took (or is taking) a dataset: the newest request that covers it (its
    own, its engagement's or its client's) past approval, a verified one first. None when the
    actor sees none."""
    covers = (
        Q(scope=DeletionScope.DATASET, dataset=dataset)
        | Q(scope=DeletionScope.ENGAGEMENT, engagement_id=dataset.engagement_id)
        | Q(scope=DeletionScope.CLIENT, client_id=dataset.client_id)
    )
    started = [
        DeletionState.VERIFIED,
        DeletionState.EXECUTING,
        DeletionState.APPROVED,
        DeletionState.FAILED,
    ]
    found = deletion_request_list(actor=actor).filter(covers, state__in=started)
    return found.filter(state=DeletionState.VERIFIED).first() or found.first()
