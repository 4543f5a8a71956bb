"""Sending one notice: an e-mail, or a POST to the webhook through the egress policy; and the
test button's notice through either."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.mail import EmailMessage

from backups.models import AlertDelivery, DeliveryChannel
from backups.services.notifications.messages import alert_payload, body_of, subject_of
from backups.services.notifications.org_settings import settings_of, webhook_url_of
from kernel.egress import GuardedPoolManager
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5
# What the tenant learns of any failed webhook POST (refused by the egress policy, nothing
# listening, no answer, closed, an answer other than 2xx): one reason for all.
WEBHOOK_NOT_REACHABLE = "no success (2xx) answer came back."


class DeliveryFailed(Exception):
    """A notice could not be sent; the message never contains the webhook URL."""


class WebhookUnreachable(DeliveryFailed):
    """The webhook did not take the notice. `str()` is the same for every cause (shown to the
    tenant); `cause` says which, for the server log only."""

    def __init__(self, host: str, cause: str) -> None:
        super().__init__(f"webhook at {host} not reachable: {WEBHOOK_NOT_REACHABLE}")
        self.cause = cause


def email_send(delivery: AlertDelivery) -> None:
    recipients = [str(address) for address in delivery.recipients]
    if not recipients:
        return
    message = EmailMessage(
        subject=subject_of(delivery.alert, delivery.event),
        body=body_of(delivery.alert, delivery.event),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    try:
        message.send(fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib.SMTPException, socket errors, bad headers
        raise DeliveryFailed(f"e-mail not sent: {type(exc).__name__}: {exc}") from None


def webhook_post(url: str, payload: dict[str, Any]) -> None:
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


def webhook_send(delivery: AlertDelivery) -> None:
    url = webhook_url_of(settings_of(delivery.alert.organization))
    if url is None:
        raise DeliveryFailed("no webhook is configured any more")
    webhook_post(url, alert_payload(delivery.alert, delivery.event))


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
    url = webhook_url_of(settings_of(actor.organization))
    if url is None:
        return NotificationTest(channel, sent=False, detail="No webhook is configured.")
    try:
        webhook_post(
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
