"""What the lifecycle app records when lower apps and Django report access.

Contracts: clients.signals (grant_changed, token_created), backups.signals (data_accessed),
kernel.api (procurement_request_finished),
django.contrib.auth.signals (user_logged_in, user_login_failed). Every receiver calls
`access_event_record`, which writes a pending event in the sender's transaction; a worker
appends it to the chain once that transaction commits.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from backups import signals as backups_signals
from clients import signals as clients_signals
from clients.models import Membership
from kernel.api import procurement_request_finished
from kernel.http import NO_ORIGIN, request_origin
from kernel.tenancy import system_scope
from lifecycle.models import AccessAction, ActorKind
from lifecycle.services import access_event_record, evidence_token_use_record


@receiver(clients_signals.grant_changed, dispatch_uid="lifecycle.grant_changed")
def _grant_changed(sender: Any, grant: Any, action: str, actor: Any, **kwargs: Any) -> None:
    access_event_record(
        organization=grant.organization,
        action=action,  # "grant" | "revoke" | "expire" are access actions of the same name
        actor=actor,
        client=grant.client,
        dataset=grant.dataset,
        details={
            "grant": str(grant.public_id),
            "grantee": grant.grantee.get_username(),
            "permission": grant.permission,
            "expires_at": grant.expires_at.isoformat(),
            "reason": grant.reason,
        },
    )


@receiver(clients_signals.token_created, dispatch_uid="lifecycle.token_created")
def _token_created(sender: Any, token: Any, user: Any, **kwargs: Any) -> None:
    access_event_record(
        organization=token.organization,
        action=AccessAction.TOKEN_CREATED,
        user=user,
        details={
            "token": str(token.public_id),
            "name": token.name,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )


@receiver(backups_signals.data_accessed, dispatch_uid="lifecycle.data_accessed")
def _data_accessed(
    sender: Any,
    organization: Any,
    actor: Any,
    action: str,
    dataset: Any,
    snapshot: Any,
    details: dict[str, Any],
    origin: Any = NO_ORIGIN,
    **kwargs: Any,
) -> None:
    access_event_record(
        organization=organization,
        action=action,
        actor=actor,
        dataset=dataset,
        snapshot_ref=snapshot.public_id if snapshot is not None else None,
        origin=origin,
        details=details,
    )


def _membership_of(user: Any) -> Membership | None:
    """A sign-in happens before any organization is known: the user's own membership tells it
    (the system scope's lookup, like the actor's)."""
    with system_scope():
        return Membership.objects.select_related("organization").filter(user=user).first()


@receiver(user_logged_in, dispatch_uid="lifecycle.login")
def _login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    membership = _membership_of(user)
    if membership is None:
        return  # a login of no organization (a superuser of the admin only) has no chain
    access_event_record(
        organization=membership.organization,
        action=AccessAction.LOGIN,
        user=user,
        origin=request_origin(request),
    )


@receiver(user_login_failed, dispatch_uid="lifecycle.login_failed")
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")[:150]
    user = get_user_model().objects.filter(username=username).first() if username else None
    membership = _membership_of(user) if user is not None else None
    if membership is None:
        return  # an unknown name belongs to no organization's log (rate limits are elsewhere)
    access_event_record(
        organization=membership.organization,
        action=AccessAction.LOGIN_FAILED,
        user=user,
        actor_kind=ActorKind.USER,
        origin=request_origin(request),
        details={"username": username},
    )


@receiver(clients_signals.dataset_registered, dispatch_uid="lifecycle.hold_new_dataset")
def _hold_new_dataset(sender: Any, dataset: Any, **kwargs: Any) -> None:
    # After backups' receiver created the protection row (registered first: INSTALLED_APPS).
    from lifecycle.services import legal_hold_cover_new_dataset

    legal_hold_cover_new_dataset(dataset)


@receiver(procurement_request_finished, dispatch_uid="lifecycle.procurement_request_finished")
def _procurement_request_finished(sender: Any, actor: Any, **kwargs: Any) -> None:
    """Every use of a procurement token is an access event, a refused one too."""
    evidence_token_use_record(
        actor=actor,
        method=kwargs["method"],
        path=kwargs["path"],
        status=kwargs["status"],
        origin=kwargs["origin"],
    )
