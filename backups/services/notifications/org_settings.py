"""An organization's notification settings: whether alerts go by e-mail, and the webhook URL,
sealed under the master key (never logged or returned; only its host is shown)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from backups.models import NotificationSettings
from clients.models import Organization
from kernel.crypto import SealError, seal, unseal
from kernel.egress import url_check
from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)


def settings_of(organization: Organization) -> NotificationSettings | None:
    return NotificationSettings.objects.filter(organization=organization).first()


def _purpose(organization: Organization) -> str:
    return f"notification-webhook:{organization.public_id}"


def webhook_url_of(notification: NotificationSettings | None) -> str | None:
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
    url = webhook_url_of(notification)
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
