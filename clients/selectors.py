"""Every tenant read of the inventory starts here, from `visible_to(actor)`."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from clients.models import (
    AccessGrant,
    ApiToken,
    Client,
    ClientNamespace,
    Dataset,
    Engagement,
    GrantRequest,
    Invitation,
    LifecycleState,
    Membership,
    StorageLocation,
)
from kernel.exceptions import Forbidden
from kernel.tenancy import Actor, get_visible_or_404, grant_filter


def client_list(*, actor: Actor) -> QuerySet[Client]:
    """Clients the actor may see, with counts of their live datasets (one query)."""
    datasets = Q(
        datasets__lifecycle_state__in=[s for s in LifecycleState if s != LifecycleState.DELETED]
    )
    if not actor.sees_whole_organization:
        datasets &= grant_filter(actor, client="datasets__client_id", dataset="datasets__pk")
    # An aggregate drops Meta.ordering, so the order is stated again for stable pages.
    return (
        Client.objects.visible_to(actor)
        .annotate(dataset_count=Count("datasets", filter=datasets, distinct=True))
        .order_by("name", "id")
    )


def client_get(*, actor: Actor, public_id: Any) -> Client:
    return get_visible_or_404(client_list(actor=actor), public_id)


def engagement_list(*, actor: Actor) -> QuerySet[Engagement]:
    return Engagement.objects.visible_to(actor).select_related("client")


def location_list(*, actor: Actor) -> QuerySet[StorageLocation]:
    return StorageLocation.objects.visible_to(actor).select_related("client")


def namespace_list(*, actor: Actor) -> QuerySet[ClientNamespace]:
    """Client folders on shared locations: admins see all, a lead its granted clients'."""
    return ClientNamespace.objects.visible_to(actor).select_related("location", "client")


def dataset_list(*, actor: Actor) -> QuerySet[Dataset]:
    return Dataset.objects.visible_to(actor).select_related(
        "client", "engagement", "location", "owner", "registered_by"
    )


def dataset_get(*, actor: Actor, public_id: Any) -> Dataset:
    return get_visible_or_404(dataset_list(actor=actor), public_id)


def grant_list(*, actor: Actor) -> QuerySet[AccessGrant]:
    return AccessGrant.objects.visible_to(actor).select_related(
        "client", "dataset", "grantee", "granted_by", "revoked_by"
    )


def grant_request_list(*, actor: Actor) -> QuerySet[GrantRequest]:
    return GrantRequest.objects.visible_to(actor).select_related(
        "client", "dataset", "requested_by", "decided_by", "grant"
    )


def membership_list(*, actor: Actor) -> QuerySet[Membership]:
    """The organization's members: for owners, admins and auditors."""
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors may list the organization's members.")
    return Membership.objects.visible_to(actor).select_related("user")


def membership_get(*, actor: Actor, public_id: Any) -> Membership:
    """One member of the actor's organization (another organization's: 404); only owners,
    admins and auditors look members up."""
    membership = get_visible_or_404(
        Membership.objects.visible_to(actor).select_related("user"), public_id
    )
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors may see the organization's members.")
    return membership


def invitation_pending_list(*, actor: Actor, now: Any) -> QuerySet[Invitation]:
    """Invitations not used, replaced or expired yet: for owners, admins and auditors."""
    if not actor.sees_whole_organization:
        raise Forbidden("Only owners, admins and auditors may list the invitations.")
    return (
        Invitation.objects.visible_to(actor)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        .select_related("invited_by")
    )


def token_list(*, actor: Actor) -> QuerySet[ApiToken]:
    return ApiToken.objects.visible_to(actor)


def member_user_list(*, actor: Actor) -> QuerySet[Any]:
    """Users of the actor's organization (for choosing owners and grantees)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(membership__organization_id=actor.organization_id)
