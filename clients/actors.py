"""How a signed-in user becomes the kernel's `Actor`: the organization of their membership,
their role, and the levels of their live grants. Settings name `actor_for_user` as the
kernel's actor resolver (`AGENCYOPS_ACTOR_RESOLVER`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from guardian.models import UserObjectPermission

from clients.models import AccessGrant, Client, Dataset, Membership, Organization
from kernel.tenancy import (
    LEVELS,
    WHOLE_ORGANIZATION_ROLES,
    Actor,
    organization_scope,
    system_scope,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def actor_for_user(
    user: AbstractBaseUser | AnonymousUser | None, *, token_id: int | None = None
) -> Actor | None:
    """Build the actor of a signed-in user: organization, role and live grants. None if the user
    belongs to no organization."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    # Which organization is the question, so the lookup is the system scope's; the grants are
    # then read inside that organization's scope.
    with system_scope():
        membership = (
            Membership.objects.select_related("organization").filter(user_id=user.pk).first()
        )
    if membership is None:
        return None
    if membership.role in WHOLE_ORGANIZATION_ROLES:
        return Actor(
            organization=membership.organization,
            role=membership.role,
            user=user,
            token_id=token_id,
        )
    with organization_scope(membership.organization_id):
        client_levels, dataset_levels, dataset_clients = _grant_levels(
            user, membership.organization
        )
    return Actor(
        organization=membership.organization,
        role=membership.role,
        user=user,
        token_id=token_id,
        client_levels=client_levels,
        dataset_levels=dataset_levels,
        dataset_grant_client_ids=frozenset(dataset_clients),
    )


def _grant_levels(
    user: AbstractBaseUser, organization: Organization
) -> tuple[dict[int, int], dict[int, int], set[int]]:
    """Read the user's guardian object permissions on clients and datasets of the organization.

    A level counts only while an active grant backs it: a grant that expired a second ago stops
    working at once, before the every-minute sweep removes its guardian rows.
    """
    types = ContentType.objects.get_for_models(Client, Dataset)
    client_ct, dataset_ct = types[Client].pk, types[Dataset].pk
    raw_clients: dict[int, int] = {}
    raw_datasets: dict[int, int] = {}
    rows = UserObjectPermission.objects.filter(
        user_id=user.pk, content_type_id__in=(client_ct, dataset_ct)
    ).values_list("content_type_id", "object_pk", "permission__codename")
    for content_type_id, object_pk, codename in rows:
        level = LEVELS.get(codename.split("_", 1)[0], 0)
        target = raw_clients if content_type_id == client_ct else raw_datasets
        pk = int(object_pk)
        target[pk] = max(target.get(pk, 0), level)
    active = AccessGrant.objects.active(timezone.now()).filter(
        organization=organization, grantee_id=user.pk
    )
    client_levels: dict[int, int] = {}
    if raw_clients:
        # Grants are made in the grant's organization only, so this also scopes to it.
        rows1 = active.filter(dataset__isnull=True, client_id__in=raw_clients)
        for client_id, permission in rows1.values_list("client_id", "permission"):
            level = min(raw_clients[client_id], LEVELS[permission])
            client_levels[client_id] = max(client_levels.get(client_id, 0), level)
    dataset_levels: dict[int, int] = {}
    dataset_clients: set[int] = set()
    if raw_datasets:
        rows2 = active.filter(dataset_id__in=raw_datasets)
        for dataset_id, client_id, permission in rows2.values_list(
            "dataset_id", "client_id", "permission"
        ):
            level = min(raw_datasets[dataset_id], LEVELS[permission])
            dataset_levels[dataset_id] = max(dataset_levels.get(dataset_id, 0), level)
            dataset_clients.add(client_id)
    return client_levels, dataset_levels, dataset_clients
