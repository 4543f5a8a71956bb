"""Logins, organizations and their members.

Usernames are global (one login belongs to one organization), so what a tenant may learn about
them is kept to the least: see `member_create`.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from agencyops.exceptions import Conflict, Forbidden, ValidationFailed
from agencyops.tenancy import Actor
from clients import signals
from clients.models import Membership, Organization, Role
from clients.services.inventory import _save, _unique_slug


def user_create(*, username: str, email: str = "", password: str | None = None) -> tuple[Any, str]:
    """Create a login. Returns the user and the password (generated if none was given)."""
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ValidationFailed("That username is taken.", fields={"username": "Already taken."})
    password = password or secrets.token_urlsafe(12)
    user = user_model.objects.create_user(username=username, email=email, password=password)
    return user, password


@transaction.atomic
def organization_create(*, name: str, owner: User, slug: str = "") -> Organization:
    """Create an agency with its first owner. The owner may belong to no other organization."""
    if Membership.objects.filter(user=owner).exists():
        raise Conflict(f"{owner.username} already belongs to an organization.")
    slug = slug or _unique_slug(name, lambda s: Organization.objects.filter(slug=s).exists())
    organization = _save(Organization(name=name, slug=slug))
    _save(Membership(organization=organization, user=owner, role=Role.OWNER))
    signals.organization_created.send(sender=Organization, organization=organization)
    return organization


@transaction.atomic
def membership_add(*, actor: Actor, user: User, role: str) -> Membership:
    """Add a user to the actor's organization. Only owners create owners."""
    actor.require_admin("add members")
    if role == Role.OWNER and actor.role not in ("owner", "system"):
        raise Forbidden("Only an owner may make someone an owner.")
    if Membership.objects.filter(user=user).exists():
        raise ValidationFailed(
            "This user already belongs to an organization.",
            fields={"username": "Already a member of an organization."},
        )
    return _save(Membership(organization=actor.organization, user=user, role=role))


@transaction.atomic
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role. Admins cannot touch owners; the last owner stays an owner."""
    actor.require_admin("change roles")
    touches_owner = Role.OWNER in (membership.role, role)
    if touches_owner and actor.role not in ("owner", "system"):
        raise Forbidden("Only an owner may grant or remove the owner role.")
    if membership.role == Role.OWNER and role != Role.OWNER:
        owners = Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Role.OWNER
        )
        if owners.count() <= 1:
            raise Conflict("An organization keeps at least one owner.")
    membership.role = role
    return _save(membership, update_fields=["role"])


@transaction.atomic
def member_create(
    *, actor: Actor, username: str, role: str, email: str = "", password: str | None = None
) -> Membership:
    """Add a member to the actor's organization by username. A new username creates the login
    (without a password unless one is given: the person sets it, or signs in another way); an
    existing login that belongs to no organization is attached."""
    actor.require_admin("add members")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user, _ = user_create(username=username, email=email, password=password or None)
        if not password:
            user.set_unusable_password()
            user.save(update_fields=["password"])
    return membership_add(actor=actor, user=user, role=role)
