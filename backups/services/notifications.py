"""Alert notices and where they go: an e-mail to the dataset owner and the organization's
owners/admins, plus an optional webhook (a chat tool's incoming webhook).

The notices of an alert event are AlertDelivery rows recorded in the alert's transaction and
sent right after its commit, in the same process. Each delivery is claimed by a conditional
update before it is sent, so a retried task or the periodic retry never sends it twice; a
failed send is retried with backoff. The webhook URL is sealed under the master key and never
logged or returned.

A webhook is a URL the tenant chose, so it is reached only where the egress policy allows
(kernel.egress): checked when saved, and every POST connects through the guarded connect,
follows no redirect, and waits at most WEBHOOK_TIMEOUT_SECONDS. What the tenant is told of a
failure is one sentence for every cause (refused, closed, silent, an error status), so neither
the test button nor a delivery's error tells a scanner what listens behind an address; the
cause goes to the server log only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from backups.models import (
    Alert,
    AlertDelivery,
    AlertKind,
    DeliveryChannel,
    DeliveryEvent,
    NotificationSettings,
)
from clients.models import Membership, Organization, Role
from kernel.crypto import SealError, seal, unseal
from kernel.egress import GuardedPoolManager, url_check
from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5
# What the tenant learns of any failed webhook POST (refused by the egress policy, nothing
# listening, no answer, closed, an answer other than 2xx): one reason for all.
WEBHOOK_NOT_REACHABLE = "no success (2xx) answer came back."
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

WHAT_TO_DO = {
    AlertKind.BACKUP_FAILED: (
        "Check that the target is reachable and its credentials are valid, then start a backup "
        "again from the dataset page. The next successful backup to this target resolves this "
        "alert."
    ),
    AlertKind.RPO_MISSED: (
        "No good snapshot is recent enough for the dataset's recovery point objective. Check "
        "the failed runs and the worker, then start a backup."
    ),
    AlertKind.DRILL_FAILED: (
        "A restore drill could not restore the dataset. Read the drill's issues and fix the "
        "target or the snapshot before you need a real restore."
    ),
    AlertKind.DRILL_SLOW: (
        "A restore drill took longer than the dataset's recovery time objective. Consider a "
        "faster tier or target, or agree a longer RTO with the client."
    ),
    AlertKind.DRILL_OVERDUE: "Run a restore drill for this dataset.",
    AlertKind.POSTURE_REGRESSION: (
        "A protection setting of the storage location weakened. Open the location's posture "
        "and apply the fix, or restore the setting at the provider."
    ),
    AlertKind.REVIEW_DUE: (
        "Confirm the protection still fits (datasets, policy, targets, RPO/RTO) and record the "
        "review; the alert resolves once the review is recorded."
    ),
    AlertKind.DELETION_AWAITING: (
        "Open the deletion request, read its plan (every copy it will delete, and the copies "
        "handed out), then approve or reject it; an owner or admin who did not request it must "
        "decide. The alert resolves with the decision."
    ),
}


# --- deliveries ---


def _settings_of(organization: Organization) -> NotificationSettings | None:
    return NotificationSettings.objects.filter(organization=organization).first()


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
    notification = _settings_of(alert.organization)
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
            _email_send(delivery)
        else:
            _webhook_send(delivery)
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


class DeliveryFailed(Exception):
    """A notice could not be sent; the message never contains the webhook URL."""


class WebhookUnreachable(DeliveryFailed):
    """The webhook did not take the notice. `str()` is the same for every cause (shown to the
    tenant); `cause` says which, for the server log only."""

    def __init__(self, host: str, cause: str) -> None:
        super().__init__(f"webhook at {host} not reachable: {WEBHOOK_NOT_REACHABLE}")
        self.cause = cause


def _link(alert: Alert) -> str:
    base = settings.AGENCYOPS_SITE_URL.rstrip("/")
    if alert.dataset is not None:
        return base + reverse("dataset-detail", args=[alert.dataset.public_id])
    if alert.client is not None:
        return base + reverse("client-detail", args=[alert.client.public_id])
    return base + reverse("dashboard")


# Characters no mail header may carry: C0 and C1 controls (CR, LF, TAB…), DEL and the Unicode
# line and paragraph separators. A client's name is whatever someone typed.
_UNSAFE_HEADER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_safe(text: str) -> str:
    """One line for a mail header: every unsafe character becomes a space (never a refused
    message: Django refuses a header with a newline, and the notice would be lost)."""
    return " ".join(_UNSAFE_HEADER.sub(" ", text).split())


def _subject(alert: Alert, event: str) -> str:
    prefix = "[AgencyOps] Resolved: " if event == DeliveryEvent.RESOLVED else "[AgencyOps] "
    return header_safe(prefix + alert.title)[:250]


def _body(alert: Alert, event: str) -> str:
    lines = []
    if event == DeliveryEvent.RESOLVED:
        lines += [
            f"Resolved: {alert.title}",
            "",
            alert.resolution or "The condition cleared.",
            "",
            f"Open since: {alert.opened_at:%Y-%m-%d %H:%M} UTC",
            f"Resolved at: {alert.resolved_at:%Y-%m-%d %H:%M} UTC"
            if alert.resolved_at
            else "Resolved.",
            f"Occurrences: {alert.occurrences}",
        ]
    else:
        lines += [
            alert.title,
            "",
            f"What happened: {alert.message}",
            f"Since: {alert.opened_at:%Y-%m-%d %H:%M} UTC",
            f"Severity: {alert.get_severity_display()}",
            "",
            "What to do: " + WHAT_TO_DO.get(AlertKind(alert.kind), "Look into it."),
        ]
    if alert.client is not None:
        lines.append(f"Client: {alert.client.name}")
    if alert.dataset is not None:
        lines.append(f"Dataset: {alert.dataset.name}")
    lines += ["", f"Details: {_link(alert)}", "", "-- AgencyOps"]
    return "\n".join(lines)


def _email_send(delivery: AlertDelivery) -> None:
    recipients = [str(address) for address in delivery.recipients]
    if not recipients:
        return
    message = EmailMessage(
        subject=_subject(delivery.alert, delivery.event),
        body=_body(delivery.alert, delivery.event),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    try:
        message.send(fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib.SMTPException, socket errors, bad headers
        raise DeliveryFailed(f"e-mail not sent: {type(exc).__name__}: {exc}") from None


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """The webhook body: a chat-friendly "text" (Slack, Mattermost, Teams, Rocket.Chat all show
    it) and the alert's fields for machines."""
    state_word = "RESOLVED" if event == DeliveryEvent.RESOLVED else alert.severity.upper()
    detail = alert.resolution if event == DeliveryEvent.RESOLVED else alert.message
    return {
        "text": f"[AgencyOps] {state_word}: {alert.title}\n{detail}\n{_link(alert)}",
        "alert": {
            "id": str(alert.public_id),
            "kind": alert.kind,
            "state": alert.state,
            "severity": alert.severity,
            "title": alert.title,
            "message": alert.message,
            "client": (
                {"id": str(alert.client.public_id), "name": alert.client.name}
                if alert.client
                else None
            ),
            "dataset": (
                {"id": str(alert.dataset.public_id), "name": alert.dataset.name}
                if alert.dataset
                else None
            ),
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }


def _webhook_post(url: str, payload: dict[str, Any]) -> None:
    """POST the payload as JSON; WebhookUnreachable unless a 2xx answer came back. A redirect
    is an answer like any other non-2xx: the body is not sent elsewhere."""
    host = urlsplit(url).hostname or "?"
    # A pool per POST: a connection kept from an earlier POST could outlive a change of the
    # egress policy (or of the name's address) and would skip the check.
    with GuardedPoolManager(num_pools=1) as http:
        try:
            response = http.request(
                "POST",
                url,
                body=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "AgencyOps-alerts"},
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(
                    connect=WEBHOOK_TIMEOUT_SECONDS, read=WEBHOOK_TIMEOUT_SECONDS
                ),
                preload_content=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, HTTPException, ValueError) as exc:
            raise WebhookUnreachable(host, type(exc).__name__) from None
        try:
            response.read(1024)
        except (urllib3.exceptions.HTTPError, OSError, HTTPException) as exc:
            raise WebhookUnreachable(host, type(exc).__name__) from None
        finally:
            response.release_conn()
        if not 200 <= response.status < 300:
            raise WebhookUnreachable(host, f"HTTP {response.status}")


def _webhook_send(delivery: AlertDelivery) -> None:
    url = _webhook_url(_settings_of(delivery.alert.organization))
    if url is None:
        raise DeliveryFailed("no webhook is configured any more")
    _webhook_post(url, alert_payload(delivery.alert, delivery.event))


# --- notification settings ---


def _purpose(organization: Organization) -> str:
    return f"notification-webhook:{organization.public_id}"


def _webhook_url(notification: NotificationSettings | None) -> str | None:
    """The plain webhook URL, for sending only. Never log or return it."""
    if notification is None or not notification.webhook_url_sealed:
        return None
    try:
        return unseal(
            bytes(notification.webhook_url_sealed), purpose=_purpose(notification.organization)
        ).decode()
    except SealError:
        logger.error("the webhook URL of organization %s does not unseal", notification.pk)
        return None


def webhook_host(notification: NotificationSettings | None) -> str | None:
    """The webhook's host: what the API and pages may show of it."""
    url = _webhook_url(notification)
    return urlsplit(url).hostname if url else None


def notification_settings_get(*, actor: Actor) -> NotificationSettings:
    """The organization's settings (an unsaved default row when none was ever saved)."""
    actor.require_admin("read notification settings")
    found = NotificationSettings.objects.visible_to(actor).select_related("organization").first()
    return found or NotificationSettings(organization=actor.organization)


def _validate_webhook_url(url: str) -> str:
    url = url.strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationFailed(
            "The webhook URL must be an http or https URL.",
            fields={"webhook_url": "Give an http:// or https:// URL."},
        ) from None
    return url_check(url, field="webhook_url")


def notification_settings_update(
    *,
    actor: Actor,
    email_enabled: bool | None = None,
    webhook_url: str | None = None,
) -> NotificationSettings:
    """Change where alerts go. `webhook_url`: None keeps it, "" removes it, a URL replaces it
    (sealed under the master key, never returned). A URL must pass the egress policy
    (`url_check`: http(s), no credentials in it, no internal or metadata address unless the
    operator allows it)."""
    actor.require_admin("change notification settings")
    clean: str | None = None
    if webhook_url is not None and webhook_url.strip():
        # Checked before the row is locked: the check may wait on DNS.
        clean = _validate_webhook_url(webhook_url)
    with transaction.atomic():
        notification, _ = NotificationSettings.objects.select_for_update().get_or_create(
            organization=actor.organization
        )
        if email_enabled is not None:
            notification.email_enabled = email_enabled
        if clean is not None:
            notification.webhook_url_sealed = seal(
                clean.encode(), purpose=_purpose(actor.organization)
            )
        elif webhook_url is not None:
            notification.webhook_url_sealed = None
        notification.save()
    return notification


@dataclass(frozen=True)
class NotificationTest:
    channel: str
    sent: bool
    detail: str


def notification_settings_test(*, actor: Actor, channel: str) -> NotificationTest:
    """Send a test notice now through one channel: an e-mail to the acting admin, or a POST to
    the webhook. Reports what happened without raising (the webhook URL never appears). The
    webhook's answer is "reachable" (a 2xx came back) or "not reachable" with one reason for
    every failure: never the remote's status, body or the kind of error."""
    actor.require_admin("send a test notification")
    if channel == DeliveryChannel.EMAIL:
        address = getattr(actor.user, "email", "")
        if not address:
            return NotificationTest(channel, sent=False, detail="You have no e-mail address.")
        try:
            EmailMessage(
                subject="[AgencyOps] Test notification",
                body=(
                    "This is a test of AgencyOps alert e-mail. Alerts go to dataset owners and "
                    f"the organization's owners and admins.\n\n{settings.AGENCYOPS_SITE_URL}"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[address],
            ).send(fail_silently=False)
        except OSError as exc:
            return NotificationTest(channel, sent=False, detail=f"Not sent: {type(exc).__name__}")
        return NotificationTest(channel, sent=True, detail=f"Sent to {address}.")
    url = _webhook_url(_settings_of(actor.organization))
    if url is None:
        return NotificationTest(channel, sent=False, detail="No webhook is configured.")
    try:
        _webhook_post(
            url,
            {
                "text": "[AgencyOps] Test notification: alerts of "
                f"{actor.organization.name} will arrive here.",
                "alert": None,
            },
        )
    except WebhookUnreachable as exc:
        logger.info("test webhook of organization %s failed: %s", actor.organization.pk, exc.cause)
        return NotificationTest(
            channel, sent=False, detail=f"Not reachable: {WEBHOOK_NOT_REACHABLE}"
        )
    return NotificationTest(
        channel, sent=True, detail=f"Reachable: posted to {urlsplit(url).hostname}."
    )
