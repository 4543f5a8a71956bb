"""Personal API tokens: issued once, stored as SHA-256, revoked by their owner or an admin, and
never alive longer than `AGENCYOPS_TOKEN_MAX_DAYS`."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clients import signals
from clients.models import ApiToken, Membership
from clients.services.common import validated_save
from kernel.exceptions import Conflict, Forbidden, ValidationFailed
from kernel.tenancy import Actor, system_scope

TOKEN_PREFIX = "ao_"  # noqa: S105  # a public marker, not a secret


def token_hash(raw: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is a safe, fast lookup key.
    return hashlib.sha256(raw.encode()).hexdigest()


def _token_expiry(*, now: datetime, expires_at: datetime | None, days: int | None) -> datetime:
    """The expiry asked for (a date, or a number of days from now), or the default; never
    further than the maximum lifetime, read from the settings now."""
    max_days = settings.AGENCYOPS_TOKEN_MAX_DAYS
    too_long = ValidationFailed(
        f"A personal token lives at most {max_days} days.",
        fields={"expires_at": f"At most {max_days} days from now."},
    )
    in_past = ValidationFailed(
        "The expiry must be in the future.", fields={"expires_at": "Must be in the future."}
    )
    if days is not None:
        # Compared as a number: a huge count of days would overflow a datetime.
        if days < 1:
            raise in_past
        if days > max_days:
            raise too_long
        return now + timedelta(days=days)
    if expires_at is None:
        return now + timedelta(days=min(settings.AGENCYOPS_TOKEN_DEFAULT_DAYS, max_days))
    if expires_at <= now:
        raise in_past
    if expires_at > now + timedelta(days=max_days):
        raise too_long
    return expires_at


@transaction.atomic
def api_token_issue(
    *,
    user: Any,
    name: str = "personal token",
    expires_at: datetime | None = None,
    days: int | None = None,
) -> tuple[ApiToken, str]:
    """Issue a personal token. Returns the row and the token, which is never shown again.

    The token expires at `expires_at` or after `days` (not both), at most
    `AGENCYOPS_TOKEN_MAX_DAYS` from now; without either, after the default lifetime (capped the
    same way). Anything longer is refused on `expires_at`.
    """
    if expires_at is not None and days is not None:
        raise ValidationFailed(
            "Give an expiry date or a number of days, not both.",
            fields={"expires_at": "Give a date or a number of days, not both."},
        )
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    if membership is None:
        raise ValidationFailed(
            "The user belongs to no organization.", fields={"username": "Not a member."}
        )
    expiry = _token_expiry(now=timezone.now(), expires_at=expires_at, days=days)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = validated_save(
        ApiToken(
            organization=membership.organization,
            user=user,
            name=name,
            token_hash=token_hash(raw),
            expires_at=expiry,
        )
    )
    signals.token_created.send(sender=ApiToken, token=token, user=user)
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live token for this secret, or None (unknown, revoked, expired, inactive user)."""
    now = timezone.now()
    # The secret tells the organization: found across all of them, before any scope exists.
    with system_scope():
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=token_hash(raw), revoked_at__isnull=True)
            .first()
        )
    if token is None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute: a hot token must not write on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        with system_scope():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@transaction.atomic
def api_token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    if token.user_id != actor.user_id and not actor.is_admin:
        raise Forbidden("You may revoke only your own tokens.")
    if token.revoked_at is not None:
        raise Conflict("This token was already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return token
