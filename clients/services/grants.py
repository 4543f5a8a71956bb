"""Access grants: written as django-guardian object permissions, revoked or expired exactly.

The rule every function here keeps: the guardian rows of (user, client or dataset) always equal
what the user's active grants on that target need — nothing more once a grant is revoked or
expired (`grant_permission_orphans` proves it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from clients import signals
from clients.models import (
    GRANT_LEVELS,
    AccessGrant,
    Client,
    Dataset,
    GrantRequest,
    GrantRequestStatus,
    Membership,
    Role,
)
from clients.services.common import validated_save
from kernel.exceptions import Conflict, Forbidden, ValidationFailed
from kernel.tenancy import Actor

_CLIENT_CODENAMES = ("view_client", "restore_client", "manage_client")
_DATASET_CODENAMES = ("view_dataset", "restore_dataset", "manage_dataset")


def grant_sync_permissions(
    *, user: Any, client: Client, dataset: Dataset | None, now: datetime | None = None
) -> None:
    """Make the guardian rows for (user, target) match the user's active grants exactly."""
    now = now or timezone.now()
    grants = AccessGrant.objects.active(now).filter(grantee=user, client=client, dataset=dataset)
    level = max((GRANT_LEVELS[p] for p in grants.values_list("permission", flat=True)), default=0)
    target: Client | Dataset = dataset if dataset is not None else client
    codenames = _DATASET_CODENAMES if dataset is not None else _CLIENT_CODENAMES
    for index, codename in enumerate(codenames):
        if index < level:
            assign_perm(codename, user, target)
        else:
            remove_perm(codename, user, target)


@transaction.atomic
def grant_create(
    *,
    actor: Actor,
    grantee: Any,
    client: Client,
    permission: str,
    reason: str,
    dataset: Dataset | None = None,
    expires_at: datetime | None = None,
) -> AccessGrant:
    """Grant a member view/restore/manage on a client or one dataset, until `expires_at`: in the
    future and at most `AGENCYOPS_GRANT_MAX_DAYS` away (the default lifetime when none is named,
    capped the same way)."""
    actor.require_admin("grant access")
    now = timezone.now()
    max_days = settings.AGENCYOPS_GRANT_MAX_DAYS
    expires_at = expires_at or now + timedelta(
        days=min(settings.AGENCYOPS_DEFAULT_GRANT_DAYS, max_days)
    )
    errors: dict[str, str] = {}
    if expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    elif expires_at > now + timedelta(days=max_days):
        errors["expires_at"] = f"A grant lasts at most {max_days} days from now."
    if dataset is not None and dataset.client_id != client.pk:
        errors["dataset"] = "The dataset belongs to another client."
    membership = Membership.objects.filter(user=grantee, organization=actor.organization).first()
    if membership is None:
        errors["grantee"] = "The grantee is not a member of this organization."
    elif membership.role in ("owner", "admin", "auditor"):
        errors["grantee"] = f"An {membership.role} already sees the whole organization."
    elif membership.role == Role.MEMBER and permission == "manage":
        errors["permission"] = "Members can hold view or restore grants, not manage."
    if errors:
        raise ValidationFailed("The grant is not valid.", fields=errors)
    grant = validated_save(
        AccessGrant(
            organization=actor.organization,
            grantee=grantee,
            client=client,
            dataset=dataset,
            permission=permission,
            reason=reason,
            granted_by=actor.user,
            expires_at=expires_at,
        )
    )
    grant_sync_permissions(user=grantee, client=client, dataset=dataset)
    signals.grant_changed.send(sender=AccessGrant, grant=grant, action="grant", actor=actor)
    return grant


@transaction.atomic
def grant_revoke(*, actor: Actor, grant: AccessGrant) -> AccessGrant:
    """Revoke a grant now and remove exactly the guardian rows no other active grant needs."""
    actor.require_admin("revoke access")
    locked = AccessGrant.objects.select_for_update().get(pk=grant.pk)
    if locked.revoked_at is not None:
        raise Conflict("This grant was already revoked.")
    locked.revoked_at = timezone.now()
    locked.revoked_by = actor.user
    locked.save(update_fields=["revoked_at", "revoked_by"])
    grant_sync_permissions(user=locked.grantee, client=locked.client, dataset=locked.dataset)
    signals.grant_changed.send(sender=AccessGrant, grant=locked, action="revoke", actor=actor)
    return locked


def grants_expire(now: datetime | None = None) -> list[AccessGrant]:
    """Beat's every-minute sweep: every grant past its expiry loses its guardian rows.

    Each grant is claimed once (a conditional update on `expired_at`), so two sweeps running
    side by side expire it once; the removal, the record and the `expire` hook commit together.
    """
    now = now or timezone.now()
    expired = []
    due = AccessGrant.objects.unscoped_for_system_task().expired_unswept(now).order_by("pk")
    for pk in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            claimed = AccessGrant.objects.expired_unswept(now).filter(pk=pk).update(expired_at=now)
            if not claimed:
                continue
            grant = AccessGrant.objects.select_related(
                "organization", "grantee", "client", "dataset"
            ).get(pk=pk)
            grant_sync_permissions(
                user=grant.grantee, client=grant.client, dataset=grant.dataset, now=now
            )
            signals.grant_changed.send(
                sender=AccessGrant,
                grant=grant,
                action="expire",
                actor=Actor.system(grant.organization),
            )
        expired.append(grant)
    return expired


@dataclass(frozen=True)
class OrphanPermission:
    """A guardian row no active grant needs: it would give access nobody granted."""

    user_id: int
    username: str
    codename: str
    model: str
    object_pk: str

    def __str__(self) -> str:
        return f"{self.username}: {self.codename} on {self.model} {self.object_pk}"


def grant_permission_orphans(now: datetime | None = None) -> list[OrphanPermission]:
    """Every guardian row on clients and datasets that the active grants do not explain.

    System-wide (all organizations), for the `check_grant_permissions` command.
    """
    now = now or timezone.now()
    types = ContentType.objects.get_for_models(Client, Dataset)
    client_ct, dataset_ct = types[Client].pk, types[Dataset].pk
    needed: dict[tuple[int, int, str], int] = defaultdict(int)
    active = AccessGrant.objects.unscoped_for_system_task().active(now)
    for user_id, client_id, dataset_id, permission in active.values_list(
        "grantee_id", "client_id", "dataset_id", "permission"
    ):
        key = (
            (user_id, dataset_ct, str(dataset_id))
            if dataset_id is not None
            else (user_id, client_ct, str(client_id))
        )
        needed[key] = max(needed[key], GRANT_LEVELS[permission])
    rows = (
        UserObjectPermission.objects.filter(content_type_id__in=(client_ct, dataset_ct))
        .values_list(
            "user_id", "user__username", "content_type_id", "object_pk", "permission__codename"
        )
        .order_by("user__username", "content_type_id", "object_pk", "permission__codename")
    )
    orphans = []
    for user_id, username, content_type_id, object_pk, codename in rows:
        level = GRANT_LEVELS.get(codename.split("_", 1)[0], 0)
        if level > needed.get((user_id, content_type_id, str(object_pk)), 0):
            model = "client" if content_type_id == client_ct else "dataset"
            orphans.append(OrphanPermission(user_id, username, codename, model, str(object_pk)))
    return orphans


@transaction.atomic
def grant_permission_orphans_remove(orphans: list[OrphanPermission]) -> int:
    """Re-sync every (user, target) with an orphaned row; returns how many targets were fixed."""
    from django.contrib.auth import get_user_model

    pairs = {(o.user_id, o.model, o.object_pk) for o in orphans}
    users = get_user_model().objects.in_bulk({user_id for user_id, _, _ in pairs})
    for user_id, model, object_pk in sorted(pairs):
        if model == "client":
            client = Client.objects.get(pk=int(object_pk))
            grant_sync_permissions(user=users[user_id], client=client, dataset=None)
        else:
            dataset = Dataset.objects.select_related("client").get(pk=int(object_pk))
            grant_sync_permissions(user=users[user_id], client=dataset.client, dataset=dataset)
    return len(pairs)


# --- grant requests ---


@transaction.atomic
def grant_request_create(
    *,
    actor: Actor,
    client: Client,
    permission: str,
    reason: str,
    dataset: Dataset | None = None,
    days: int = 7,
) -> GrantRequest:
    """A lead or member asks for a grant of `days` days (1 to `AGENCYOPS_GRANT_MAX_DAYS`).
    Owners, admins and auditors need none."""
    if actor.user is None or actor.sees_whole_organization:
        raise Forbidden("Only leads and members request grants; you already see everything.")
    if client.organization_id != actor.organization_id:
        raise ValidationFailed("Unknown client.", fields={"client": "No such client."})
    errors: dict[str, str] = {}
    if dataset is not None and dataset.client_id != client.pk:
        errors["dataset"] = "The dataset belongs to another client."
    if actor.role == Role.MEMBER and permission == "manage":
        errors["permission"] = "Members can hold view or restore grants, not manage."
    if days_error := _grant_days_error(days):
        errors["days"] = days_error
    if errors:
        raise ValidationFailed("The request is not valid.", fields=errors)
    return validated_save(
        GrantRequest(
            organization=actor.organization,
            requested_by=actor.user,
            client=client,
            dataset=dataset,
            permission=permission,
            reason=reason,
            days=days,
        )
    )


def _grant_days_error(days: int) -> str | None:
    max_days = settings.AGENCYOPS_GRANT_MAX_DAYS
    if days < 1:
        return "At least 1 day."
    if days > max_days:
        return f"A grant lasts at most {max_days} days."
    return None


def _decidable(actor: Actor, request: GrantRequest, verb: str) -> GrantRequest:
    actor.require_admin(f"{verb} grant requests")
    locked = GrantRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != GrantRequestStatus.PENDING:
        raise Conflict(f"This request was already {locked.status}.")
    if locked.requested_by_id == actor.user_id:
        raise Forbidden(f"You may not {verb} your own request.")
    return locked


@transaction.atomic
def grant_request_approve(
    *, actor: Actor, request: GrantRequest, note: str = "", now: datetime | None = None
) -> GrantRequest:
    """An owner or admin approves: the grant is created for the requested number of days,
    which must still be within `AGENCYOPS_GRANT_MAX_DAYS` (the operator may have lowered it)."""
    locked = _decidable(actor, request, "approve")
    if days_error := _grant_days_error(locked.days):
        raise ValidationFailed(
            "The request asks for too long a grant.", fields={"days": days_error}
        )
    now = now or timezone.now()
    grant = grant_create(
        actor=actor,
        grantee=locked.requested_by,
        client=locked.client,
        dataset=locked.dataset,
        permission=locked.permission,
        reason=f"request {locked.public_id}: {locked.reason}"[:500],
        expires_at=now + timedelta(days=locked.days),
    )
    locked.status = GrantRequestStatus.APPROVED
    locked.decided_at, locked.decided_by, locked.decision_note = now, actor.user, note
    locked.grant = grant
    return validated_save(locked)


@transaction.atomic
def grant_request_reject(*, actor: Actor, request: GrantRequest, note: str = "") -> GrantRequest:
    locked = _decidable(actor, request, "reject")
    locked.status = GrantRequestStatus.REJECTED
    locked.decided_at, locked.decided_by, locked.decision_note = timezone.now(), actor.user, note
    return validated_save(locked)
