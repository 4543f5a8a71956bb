"""Invitations: an owner or admin invites a person by e-mail; the one-time link lets them set
a username and password and join with the invited role.

Only the token's SHA-256 is stored (like API tokens); the link works once and until it
expires (`INVITATION_DAYS`). A newer invitation to the same address replaces a pending one.
"""

from __future__ import annotations

import secrets
import smtplib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from clients.models import INVITATION_DAYS, Invitation, Membership
from clients.services.common import validated_save
from clients.services.members import membership_add, require_may_add, user_create
from clients.services.tokens import token_hash
from kernel.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from kernel.tenancy import Actor, organization_scope, system_scope


class InvitationUnusable(ApplicationError):
    """The link was used already, replaced by a newer invitation, or expired."""

    status = 410
    code = "gone"


def _pending(organization_id: int, email: str) -> list[Invitation]:
    return list(
        Invitation.objects.filter(
            organization_id=organization_id,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
    )


@transaction.atomic
def invitation_send(
    *, actor: Actor, email: str, role: str, link_for: Callable[[str], str]
) -> Invitation:
    """Invite `email` to the actor's organization as `role` (owners and admins; only owners
    invite owners) and e-mail the one-time link `link_for(token)`. A pending invitation to the
    same address is replaced. If the e-mail cannot be sent, nothing is kept."""
    require_may_add(actor, role)
    now = timezone.now()
    for earlier in _pending(actor.organization_id, email):
        earlier.revoked_at = now
        earlier.save(update_fields=["revoked_at"])
    raw = secrets.token_urlsafe(32)
    invitation = validated_save(
        Invitation(
            organization=actor.organization,
            email=email,
            role=role,
            token_hash=token_hash(raw),
            invited_by=actor.user,
            expires_at=now + timedelta(days=INVITATION_DAYS),
        )
    )
    inviter = getattr(actor.user, "username", "An administrator")
    body = (
        f"{inviter} invites you to join {actor.organization.name} on AgencyOps as "
        f"{invitation.get_role_display()}.\n\n"
        f"Open this link to choose your username and password (it works once, until "
        f"{invitation.expires_at:%d %b %Y %H:%M} UTC):\n\n{link_for(raw)}\n\n"
        "If you did not expect this, ignore this e-mail."
    )
    try:
        send_mail(
            f"Join {actor.organization.name} on AgencyOps",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [email],
            fail_silently=False,
        )
    except (OSError, smtplib.SMTPException):
        raise Conflict(
            "The invitation e-mail could not be sent; check the mail settings and try again."
        ) from None
    return invitation


def invitation_for_token(*, token: str) -> Invitation:
    """The invitation this link's token opens. Unknown: NotFound; used, replaced or expired:
    InvitationUnusable (410). The token tells the organization, so it is looked up across
    every organization, before any scope exists (like API tokens)."""
    with system_scope():
        invitation = (
            Invitation.objects.select_related("organization")
            .filter(token_hash=token_hash(token))
            .first()
        )
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise InvitationUnusable("This invitation link was used already; sign in instead.")
    if invitation.revoked_at is not None:
        raise InvitationUnusable("This invitation was replaced by a newer one; use its link.")
    if invitation.expires_at <= timezone.now():
        raise InvitationUnusable("This invitation link has expired; ask for a new invitation.")
    return invitation


def invitation_accept(*, token: str, username: str, password: str) -> Membership:
    """Create the invitee's login (the username rules of `user_create`, Django's password
    validators) and membership with the invited role, and use the invitation up: one
    acceptance wins, a second or concurrent one is refused."""
    invitation = invitation_for_token(token=token)
    candidate = get_user_model()(username=username, email=invitation.email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as error:
        raise ValidationFailed(
            "The password is not strong enough.", fields={"password": error.messages}
        ) from None
    with organization_scope(invitation.organization_id), transaction.atomic():
        user, _ = user_create(username=username, email=invitation.email, password=password)
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(accepted_at=timezone.now(), accepted_user=user)
        if not claimed:
            raise InvitationUnusable("This invitation link was used already; sign in instead.")
        return membership_add(
            actor=Actor.system(invitation.organization), user=user, role=invitation.role
        )
