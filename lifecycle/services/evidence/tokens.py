"""Procurement tokens: read-only, scoped to one client, always expiring, stored hashed.

An owner or admin issues one for a client's procurement team (shown once); it reads that
client's evidence and deletion certificates and nothing else (the API base class answers 404
everywhere else). Issuing, revoking and every use are access events.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from clients.models import Client
from clients.services import token_hash
from kernel.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor, system_scope
from lifecycle.models import AccessAction, ActorKind, ProcurementToken
from lifecycle.services.access.outbox import access_event_record

# A public marker, not a secret: lifecycle.authentication answers for secrets that start with it.
PROCUREMENT_TOKEN_PREFIX = "aop_"  # noqa: S105
MAX_LIFETIME = timedelta(days=366)
# last_used_at is written at most this often: a token polled in a loop must not write each time.
TOUCH_EVERY = timedelta(minutes=1)


def actor_event_fields(actor: Actor) -> dict[str, Any]:
    """How the access log names who acted: the user or personal token, or the procurement
    token (no user behind it)."""
    if actor.is_procurement:
        return {
            "actor": actor,
            "actor_kind": ActorKind.PROCUREMENT_TOKEN,
            "actor_label": actor.procurement_token.label,
        }
    return {"actor": actor}


@transaction.atomic
def evidence_token_issue(
    *,
    actor: Actor,
    client: Client,
    name: str,
    expires_at: datetime | None,
    origin: RequestOrigin = NO_ORIGIN,
    now: datetime | None = None,
) -> tuple[ProcurementToken, str]:
    """Issue a procurement token for `client`; returns the row and the token (never shown
    again). Owners and admins only; the expiry is required, in the future and at most a year
    and a day away."""
    actor.require_admin("issue procurement tokens")
    if client.organization_id != actor.organization_id:
        raise NotFound()
    now = now or timezone.now()
    if expires_at is None:
        raise ValidationFailed(
            "A procurement token needs an expiry.", fields={"expires_at": "This field is required."}
        )
    if expires_at <= now:
        raise ValidationFailed(
            "The expiry must be in the future.", fields={"expires_at": "Must be in the future."}
        )
    if expires_at > now + MAX_LIFETIME:
        raise ValidationFailed(
            "A procurement token lives at most 366 days.",
            fields={"expires_at": "At most 366 days from now."},
        )
    name = name.strip()
    if not name:
        raise ValidationFailed("Name the token's holder.", fields={"name": "May not be blank."})
    raw = PROCUREMENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ProcurementToken(
        organization=actor.organization,
        client=client,
        name=name,
        token_hash=token_hash(raw),
        created_by=actor.user,
        expires_at=expires_at,
    )
    token.full_clean(validate_constraints=False)  # created_at is set on save; checked there
    token.save()
    access_event_record(
        organization=actor.organization,
        action=AccessAction.TOKEN_CREATED,
        client=client,
        origin=origin,
        details={
            "procurement_token": str(token.public_id),
            "name": token.name,
            "expires_at": expires_at.isoformat(),
            "reads": "this client's evidence and deletion certificates",
        },
        **actor_event_fields(actor),
    )
    return token, raw


def evidence_token_authenticate(raw: str) -> ProcurementToken | None:
    """The live procurement token for this secret, or None (unknown, revoked or expired)."""
    now = timezone.now()
    # The secret tells the organization: found across all of them, before any scope exists.
    with system_scope():
        token: ProcurementToken | None = (
            ProcurementToken.objects.select_related("organization", "client")
            .filter(token_hash=token_hash(raw), revoked_at__isnull=True)
            .first()
        )
    if token is None or token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        with system_scope():
            ProcurementToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def evidence_token_revoke(
    *, actor: Actor, token: ProcurementToken, origin: RequestOrigin = NO_ORIGIN
) -> ProcurementToken:
    """Revoke a procurement token: it answers 401 from the next request on."""
    actor.require_admin("revoke procurement tokens")
    locked: ProcurementToken = ProcurementToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        raise Conflict("This token was already revoked.")
    locked.revoked_at = timezone.now()
    locked.revoked_by = actor.user
    locked.save(update_fields=["revoked_at", "revoked_by"])
    access_event_record(
        organization=actor.organization,
        action=AccessAction.REVOKE,
        client=locked.client,
        origin=origin,
        details={"procurement_token": str(locked.public_id), "name": locked.name},
        **actor_event_fields(actor),
    )
    return locked


def evidence_token_use_record(
    *, actor: Actor, method: str, path: str, status: int, origin: RequestOrigin = NO_ORIGIN
) -> None:
    """A procurement token's request that recorded no event of its own (a certificate read, a
    refused route): one `token_used` event with what was asked and the answer's status."""
    token: ProcurementToken = actor.procurement_token
    access_event_record(
        organization=actor.organization,
        action=AccessAction.TOKEN_USED,
        client=token.client,
        origin=origin,
        details={
            "procurement_token": str(token.public_id),
            "method": method,
            "path": path[:500],
            "status": status,
        },
        **actor_event_fields(actor),
    )


# --- the token holder's page: a token pasted into a form ---


class TokenAttemptsThrottled(ApplicationError):
    """Too many wrong tokens from one address: no token is checked until the window passes."""

    status = 429


def _attempts_key(address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"procurement-token-failures:{digest}"


def evidence_token_open(raw: str, *, address: str, now: float | None = None) -> ProcurementToken:
    """The live token a holder pasted (the printable evidence page's form). Wrong, expired and
    revoked tokens count against the address under the sign-in throttle's limits and window
    (AGENCYOPS_SIGNIN_ACCOUNT_LIMIT failures per AGENCYOPS_SIGNIN_WINDOW_SECONDS); past the
    limit every attempt is refused (429) without checking the token, so guessing gets nowhere.
    The secret is neither logged nor stored."""
    now = time.time() if now is None else now
    window = settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    limit = settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT
    key = _attempts_key(address or "unknown")
    stamps = [t for t in (cache.get(key) or []) if now - t < window]
    if len(stamps) >= limit:
        minutes = max(1, math.ceil((sorted(stamps)[-limit] + window - now) / 60))
        raise TokenAttemptsThrottled(
            f"Too many wrong tokens from your address. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}."
        )
    raw = raw.strip()
    token = evidence_token_authenticate(raw) if raw.startswith(PROCUREMENT_TOKEN_PREFIX) else None
    if token is None:
        cache.set(key, [*stamps, now][-100:], timeout=window)
        raise ValidationFailed(
            "This token is not valid: it is wrong, expired or revoked.",
            fields={"token": "Wrong, expired or revoked token."},
        )
    return token


def evidence_token_grant_get(public_id: str) -> ProcurementToken | None:
    """The token a session's grant names (by id, never the secret), if it is still live: a
    token revoked or expired since ends the grant at once."""
    now = timezone.now()
    with system_scope():
        token: ProcurementToken | None = (
            ProcurementToken.objects.select_related("organization", "client")
            .filter(public_id=public_id, revoked_at__isnull=True, expires_at__gt=now)
            .first()
        )
    return token
