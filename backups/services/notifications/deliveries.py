"""The notices of an alert event: AlertDelivery rows recorded in the alert's transaction and sent
right after its commit, each claimed by a conditional update before it is sent (a retried task
or the periodic retry never sends one twice); a failed send is retried with backoff."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from backups.models import Alert, AlertDelivery, AlertKind, DeliveryChannel
from backups.services.notifications.channels import (
    DeliveryFailed,
    WebhookUnreachable,
    email_send,
    webhook_send,
)
from backups.services.notifications.org_settings import settings_of
from clients.models import Membership, Role

logger = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 5
# How long after its creation an unsent delivery with this many attempts is tried again: the
# first try is the sender's own (after commit); the periodic retry picks up what it left.
RETRY_AFTER = (
    timedelta(minutes=2),  # never tried: the sending process died before its commit hook ran
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=2),
)
# Review reminders go to the organization's owners ("raises an alert to the owner").
REVIEW_KINDS = frozenset({AlertKind.REVIEW_DUE})


def _email_recipients(alert: Alert) -> list[str]:
    """The dataset owner and the organization's active owners and admins (review reminders:
    the owners, or the admins when no owner has an address), deduplicated."""
    addresses: list[str] = []
    if alert.dataset_id is not None:
        owner = alert.dataset.owner if alert.dataset else None
        if owner is not None and owner.is_active and owner.email:
            addresses.append(owner.email)
    roles = [Role.OWNER] if alert.kind in REVIEW_KINDS else [Role.OWNER, Role.ADMIN]
    members = (
        Membership.objects.filter(
            organization_id=alert.organization_id, role__in=roles, user__is_active=True
        )
        .exclude(user__email="")
        .order_by("user__username")
        .values_list("role", "user__email")
    )
    rows = sorted(members, key=lambda row: row[0] != Role.OWNER)  # owners first, stable
    if alert.kind in REVIEW_KINDS and not rows:
        rows = list(
            Membership.objects.filter(
                organization_id=alert.organization_id, role=Role.ADMIN, user__is_active=True
            )
            .exclude(user__email="")
            .order_by("user__username")
            .values_list("role", "user__email")
        )
    addresses.extend(email for _, email in rows)
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


def _deliveries_create(alert: Alert, event: str) -> list[int]:
    """The notices of one event, recorded in the alert's transaction and sent after its
    commit. The unique (alert, channel, event) constraint keeps it to one per channel."""
    notification = settings_of(alert.organization)
    rows = []
    if notification is None or notification.email_enabled:
        recipients = _email_recipients(alert)
        if recipients:
            rows.append(
                AlertDelivery(
                    alert=alert, channel=DeliveryChannel.EMAIL, event=event, recipients=recipients
                )
            )
    if notification is not None and notification.has_webhook:
        rows.append(AlertDelivery(alert=alert, channel=DeliveryChannel.WEBHOOK, event=event))
    ids = [delivery.pk for delivery in AlertDelivery.objects.bulk_create(rows)]
    if not all(ids):  # backends that return no ids from bulk_create (none we support)
        ids = list(
            AlertDelivery.objects.filter(alert=alert, event=event).values_list("pk", flat=True)
        )
    if ids:
        # robust: a notice that cannot go out never fails the task that raised the alert.
        transaction.on_commit(lambda: alert_deliveries_send(ids), robust=True)
    return ids


def alert_deliveries_send(delivery_ids: Sequence[int], *, now: datetime | None = None) -> int:
    """Send these deliveries, each only if this call wins its claim. Returns how many went."""
    sent = 0
    for delivery_id in delivery_ids:
        if _delivery_send(delivery_id, now=now or timezone.now()):
            sent += 1
    return sent


def alert_deliveries_retry(now: datetime | None = None) -> int:
    """Periodic: send again what failed (or was never tried), with backoff, at most
    MAX_DELIVERY_ATTEMPTS times each. Returns how many went."""
    now = now or timezone.now()
    due = Q()
    for attempts, after in enumerate(RETRY_AFTER[:MAX_DELIVERY_ATTEMPTS]):
        due |= Q(attempts=attempts, created_at__lte=now - after)
    ids = list(
        AlertDelivery.objects.filter(due, sent_at__isnull=True)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:500]
    )
    return alert_deliveries_send(ids, now=now)


def _delivery_send(delivery_id: int, *, now: datetime) -> bool:
    # The claim: sent_at is set before sending, by an update that only one caller can win.
    # A process killed mid-send leaves the delivery claimed: a notice is sent at most once.
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, sent_at__isnull=True, attempts__lt=MAX_DELIVERY_ATTEMPTS
    ).update(sent_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return False
    delivery = AlertDelivery.objects.select_related(
        "alert",
        "alert__organization",
        "alert__client",
        "alert__dataset",
        "alert__location",
        "alert__policy",
    ).get(pk=delivery_id)
    try:
        if delivery.channel == DeliveryChannel.EMAIL:
            email_send(delivery)
        else:
            webhook_send(delivery)
    except DeliveryFailed as exc:
        AlertDelivery.objects.filter(pk=delivery_id).update(sent_at=None, error=str(exc)[:2000])
        logger.warning(
            "alert %s: %s notice (%s) failed, attempt %d: %s%s",
            delivery.alert.public_id,
            delivery.channel,
            delivery.event,
            delivery.attempts,
            exc,
            f" ({exc.cause})" if isinstance(exc, WebhookUnreachable) else "",
        )
        return False
    AlertDelivery.objects.filter(pk=delivery_id).update(error="")
    return True
