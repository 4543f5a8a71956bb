"""Settings pages: storage prices edited in place, and the notification settings with their
test. Input is validated by the API's own serializers, then handed to the same services the
API calls; a refusal re-renders the form with what was typed (never a webhook URL)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups.api.alerts import NotificationSettingsSerializer, NotificationTestSerializer
from backups.api.assurance import PriceWriteSerializer
from backups.models import DeliveryChannel, StorageClass
from backups.pages.errors import FORM, Errors, error_fields, flatten, serializer_errors
from backups.services import notifications
from backups.services.cost import PriceChange, storage_price_list, storage_prices_set
from backups.services.storage_classes import PROVIDER_CLASSES, provider_has_class
from clients.models import Provider
from kernel.exceptions import ApplicationError
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import Actor

# --- storage prices ---


def _price_key(provider: str, storage_class: str) -> str:
    return f"price__{provider}__{storage_class}"


def _price_rows(actor: Actor, typed: dict[str, str], errors: Errors) -> list[dict[str, Any]]:
    """One row per provider and class a backup can be billed in: the classes the provider
    offers, and any the list prices (tiering counts them)."""
    effective = {(p.provider, p.storage_class): p for p in storage_price_list(actor=actor)}
    provider_labels = dict(Provider.choices)
    rows = []
    for provider in PROVIDER_CLASSES:
        for storage_class, class_label in StorageClass.choices:
            price = effective.get((provider, storage_class))
            if price is None and not provider_has_class(provider, storage_class):
                continue
            key = _price_key(provider, storage_class)
            override = price.override.usd_per_gb_month if price and price.override else None
            shown = "" if override is None else format(Decimal(override).normalize(), "f")
            rows.append(
                {
                    "key": key,
                    "provider": provider_labels.get(provider, provider),
                    "storage_class": class_label,
                    "effective": price.usd_per_gb_month if price else None,
                    "default": price.default_usd_per_gb_month if price else None,
                    "value": typed.get(key, shown),
                    "errors": errors.get(key, []),
                }
            )
    return rows


@tenant_page
def price_list(request: TenantHttpRequest) -> HttpResponse:
    """The price of a GB-month per provider and class, edited in place by admins: an empty
    cell falls back to the list price (PATCH semantics of the API: only the cells sent)."""
    actor = request.actor
    typed: dict[str, str] = {}
    errors: Errors = {}
    status = 200
    if request.method == "POST":
        actor.require_admin("change storage prices")
        changes: list[PriceChange] = []
        keys: list[str] = []
        for key in request.POST:
            if not key.startswith("price__"):
                continue
            _, provider, storage_class = [*key.split("__"), "", ""][:3]
            typed[key] = request.POST.get(key, "").strip()
            body = PriceWriteSerializer(
                data={
                    "provider": provider,
                    "storage_class": storage_class,
                    "usd_per_gb_month": typed[key] or None,
                }
            )
            if not body.is_valid():
                errors[key] = flatten(list(body.errors.values()))
                continue
            keys.append(key)
            changes.append(
                PriceChange(provider, storage_class, body.validated_data["usd_per_gb_month"])
            )
        if not errors:
            try:
                storage_prices_set(actor=actor, changes=changes, replace=False)
            except ApplicationError as error:
                for name, texts in error.fields.items():
                    parts = name.split(".")
                    index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    errors.setdefault(keys[index] if index is not None else FORM, []).extend(texts)
                errors.setdefault(FORM, []).append(error.message)
                status = error.status
            else:
                messages.success(request, "Prices saved.")
                return redirect("price-list")
        status = max(status, 400)
    context = {
        "rows": _price_rows(actor, typed, errors),
        "errors": errors,
        "can_edit": actor.is_admin,
    }
    return render(request, "backups/settings/price_list.html", context, status=status)


# --- notification settings ---


@tenant_page
def notification_settings(request: TenantHttpRequest) -> HttpResponse:
    """Whether alerts go by e-mail, and the webhook URL: write-only (sealed; the page shows
    whether one is set and its host, never the URL, not even back into the form)."""
    actor = request.actor
    current = notifications.notification_settings_get(actor=actor)  # admins only
    errors: Errors = {}
    status = 200
    email_enabled = current.email_enabled
    if request.method == "POST":
        email_enabled = request.POST.get("email_enabled") == "on"
        data: dict[str, Any] = {"email_enabled": email_enabled}
        action = request.POST.get("webhook_action", "keep")
        if action == "replace":
            data["webhook_url"] = request.POST.get("webhook_url", "")
            if not data["webhook_url"].strip():
                errors["webhook_url"] = ["Give the new webhook URL, or keep the current one."]
        elif action == "remove":
            data["webhook_url"] = ""
        serializer = NotificationSettingsSerializer(data=data)
        if not errors and not serializer.is_valid():
            errors = serializer_errors(serializer.errors)
        if not errors:
            try:
                notifications.notification_settings_update(
                    actor=actor,
                    email_enabled=serializer.validated_data["email_enabled"],
                    webhook_url=serializer.validated_data.get("webhook_url"),
                )
            except ApplicationError as error:
                errors = error_fields(error)
                status = error.status
            else:
                messages.success(request, "Notification settings saved.")
                return redirect("notification-settings")
        status = max(status, 400)
    context = {
        "settings": current,
        "email_enabled": email_enabled,
        "webhook_host": notifications.webhook_host(current),
        "errors": errors,
        "channels": DeliveryChannel.choices,
    }
    return render(request, "backups/settings/notifications.html", context, status=status)


@require_POST
@tenant_page
def notification_test(request: TenantHttpRequest) -> HttpResponse:
    """Send a test notice through the real delivery path (the service the API's test uses);
    the result is a message on the settings page."""
    actor = request.actor
    actor.require_admin("send a test notification")
    body = NotificationTestSerializer(data={"channel": request.POST.get("channel", "")})
    if not body.is_valid():
        messages.error(request, "Choose e-mail or webhook to test.")
        return redirect("notification-settings")
    result = notifications.notification_settings_test(
        actor=actor, channel=body.validated_data["channel"]
    )
    label = DeliveryChannel(result.channel).label
    if result.sent:
        messages.success(request, f"Test {label}: {result.detail}")
    else:
        messages.error(request, f"Test {label} not delivered: {result.detail}")
    return redirect("notification-settings")
