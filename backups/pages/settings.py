"""Settings pages: backup policies with their ordered targets, storage prices, notification
settings and their test. Input is validated by the API's own serializers, then handed to the
same services the API calls; a refusal re-renders the form with what was typed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups import selectors
from backups.api.alerts import NotificationSettingsSerializer, NotificationTestSerializer
from backups.api.assurance import PriceWriteSerializer
from backups.api.core import PolicySerializer
from backups.models import BackupPolicy, DeliveryChannel, Frequency, LockMode, StorageClass
from backups.selectors.assurance import policy_get
from backups.services import TargetRetention, notifications, policy_create, policy_update
from backups.services.cost import PriceChange, storage_price_list, storage_prices_set
from backups.services.rpo import policy_rpo_floor
from backups.services.storage_classes import PROVIDER_CLASSES, provider_has_class
from clients.models import Provider
from clients.selectors import location_list
from kernel.exceptions import ApplicationError
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import Actor

Errors = dict[str, list[str]]
FORM = "form"  # errors about the whole form

# --- policies ---

KEEP_FIELDS = (
    ("keep_last", "Most recent"),
    ("keep_hourly", "Hourly"),
    ("keep_daily", "Daily"),
    ("keep_weekly", "Weekly"),
    ("keep_monthly", "Monthly"),
    ("keep_yearly", "Yearly"),
)
TEXT_FIELDS = (
    "name",
    "frequency",
    "time_of_day",
    *(name for name, _ in KEEP_FIELDS),
    "storage_class",
    "infrequent_access_after_days",
    "archive_after_days",
    "compression_level",
)
MAX_TARGETS = 10  # the API's limit
SPARE_SLOTS = 2  # empty target rows offered below the current ones


def _flatten(detail: Any) -> list[str]:
    """DRF's nested error detail as plain sentences."""
    if isinstance(detail, dict):
        return [
            f"{k}: {m}" if not str(k).isdigit() else m
            for k, v in detail.items()
            for m in _flatten(v)
        ]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item)]
    return [str(detail)]


def _serializer_errors(errors: Any) -> Errors:
    return {str(name): _flatten(detail) for name, detail in dict(errors).items()}


def _error_fields(error: ApplicationError | ValidationError) -> Errors:
    """A service's refusal, by field (FORM for the form); indexed names go to their list
    (`target_retention.0.days` → `target_retention`)."""
    found: Errors = {}
    if isinstance(error, ApplicationError):
        for name, texts in error.fields.items():
            found.setdefault(name.split(".")[0], []).extend(texts)
        found.setdefault(FORM, []).append(error.message)
        return found
    if hasattr(error, "error_dict"):
        for name, texts in error.message_dict.items():
            found.setdefault(FORM if name == NON_FIELD_ERRORS else name, []).extend(texts)
    else:
        found[FORM] = list(error.messages)
    return found


def _slots_from_post(post: Any) -> list[dict[str, str]]:
    slots = []
    for index in range(MAX_TARGETS):
        if f"target_{index}" not in post:
            break
        slots.append(
            {
                "location": post.get(f"target_{index}", "").strip(),
                "mode": post.get(f"lock_mode_{index}", "").strip(),
                "days": post.get(f"lock_days_{index}", "").strip(),
            }
        )
    return slots


def _values_from_post(post: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: post.get(name, "").strip() for name in TEXT_FIELDS}
    values["keep_forever"] = post.get("keep_forever") == "on"
    values["drill_every_days"] = post.get("drill_every_days", "").strip()
    values["slots"] = _slots_from_post(post)
    return values


def _values_from_policy(policy: BackupPolicy) -> dict[str, Any]:
    data = PolicySerializer(policy).data
    values: dict[str, Any] = {
        name: "" if data.get(name) is None else str(data[name]) for name in TEXT_FIELDS
    }
    values["time_of_day"] = policy.time_of_day.strftime("%H:%M")
    values["keep_forever"] = policy.keep_forever
    values["drill_every_days"] = str(policy.drill_every.days) if policy.drill_every else ""
    values["slots"] = [
        {
            "location": str(t.location.public_id),
            "mode": t.object_lock_mode,
            "days": str(t.object_lock_days or ""),
        }
        for t in policy.policy_targets.all()
    ]
    return values


def _new_values() -> dict[str, Any]:
    return {
        "name": "",
        "frequency": Frequency.DAILY,
        "time_of_day": "02:00",
        **{name: "0" for name, _ in KEEP_FIELDS},
        "keep_daily": "30",
        "keep_forever": False,
        "storage_class": StorageClass.STANDARD,
        "infrequent_access_after_days": "",
        "archive_after_days": "",
        "compression_level": "3",
        "drill_every_days": "91",
        "slots": [],
    }


def _serializer_data(values: dict[str, Any]) -> dict[str, Any]:
    """What the API would be sent for this form: the same serializer validates it."""
    data: dict[str, Any] = {name: values[name] for name in TEXT_FIELDS}
    for name in ("infrequent_access_after_days", "archive_after_days"):
        data[name] = data[name] or None
    data["keep_forever"] = values["keep_forever"]
    days = values["drill_every_days"]
    data["drill_every"] = (f"P{days}D" if days.isdigit() else days) if days else None
    slots = [s for s in values["slots"] if s["location"]]
    data["targets"] = [s["location"] for s in slots]
    data["target_retention"] = [
        {"location": s["location"], "mode": s["mode"], "days": s["days"]}
        for s in slots
        if s["mode"]
    ]
    return data


def _policy_form(
    request: TenantHttpRequest,
    *,
    policy: BackupPolicy | None,
    values: dict[str, Any],
    errors: Errors,
    status: int = 200,
) -> HttpResponse:
    actor = request.actor
    slots = list(values["slots"])
    while len(slots) < min(MAX_TARGETS, len(values["slots"]) + SPARE_SLOTS):
        slots.append({"location": "", "mode": "", "days": ""})
    if "drill_every" in errors:  # the API names the duration; the page asks for days
        errors.setdefault("drill_every_days", []).extend(errors.pop("drill_every"))
    context = {
        "policy": policy,
        "values": values,
        "slots": slots,
        "errors": errors,
        "keep_fields": [
            (name, label, values[name], errors.get(name, [])) for name, label in KEEP_FIELDS
        ],
        "locations": [loc for loc in location_list(actor=actor) if loc.is_store],
        "frequencies": Frequency.choices,
        "storage_classes": StorageClass.choices,
        "lock_modes": LockMode.choices,
    }
    return render(request, "backups/settings/policy_form.html", context, status=status)


def _policy_save(
    request: TenantHttpRequest, policy: BackupPolicy | None
) -> tuple[BackupPolicy | None, dict[str, Any], Errors, int]:
    actor = request.actor
    values = _values_from_post(request.POST)
    serializer = PolicySerializer(
        instance=policy, data=_serializer_data(values), context={"actor": actor}
    )
    if not serializer.is_valid():
        return None, values, _serializer_errors(serializer.errors), 400
    data = dict(serializer.validated_data)
    targets = data.pop("targets", [])
    retention = [
        TargetRetention(r["location"], r["mode"], r["days"])
        for r in data.pop("target_retention", None) or []
    ]
    try:
        if policy is None:
            saved = policy_create(actor=actor, targets=targets, target_retention=retention, **data)
        else:
            saved = policy_update(
                actor=actor, policy=policy, targets=targets, target_retention=retention, **data
            )
    except (ApplicationError, ValidationError) as error:
        status = error.status if isinstance(error, ApplicationError) else 400
        return None, values, _error_fields(error), status
    return saved, values, {}, 200


@tenant_page
def policy_list(request: TenantHttpRequest) -> HttpResponse:
    """Every policy of the organization (every member reads them): schedule in words,
    retention, the RPO it can meet, the ordered targets with their lock."""
    actor = request.actor
    visible = set(location_list(actor=actor).values_list("pk", flat=True))
    rows = [
        {
            "policy": policy,
            "rpo_floor": policy_rpo_floor(policy),
            "targets": list(policy.policy_targets.all()),
        }
        for policy in selectors.policy_list(actor=actor)
    ]
    context = {"rows": rows, "visible_locations": visible, "can_edit": actor.is_admin}
    return render(request, "backups/settings/policy_list.html", context)


@tenant_page
def policy_new(request: TenantHttpRequest) -> HttpResponse:
    request.actor.require_admin("manage backup policies")
    if request.method != "POST":
        return _policy_form(request, policy=None, values=_new_values(), errors={})
    saved, values, errors, status = _policy_save(request, None)
    if saved is None:
        return _policy_form(request, policy=None, values=values, errors=errors, status=status)
    messages.success(request, f"Policy “{saved.name}” created.")
    return redirect("policy-list")


@tenant_page
def policy_edit(request: TenantHttpRequest, policy_id: UUID) -> HttpResponse:
    actor = request.actor
    policy = policy_get(actor=actor, public_id=policy_id)
    actor.require_admin("manage backup policies")
    if request.method != "POST":
        return _policy_form(request, policy=policy, values=_values_from_policy(policy), errors={})
    saved, values, errors, status = _policy_save(request, policy)
    if saved is None:
        return _policy_form(request, policy=policy, values=values, errors=errors, status=status)
    messages.success(request, f"Policy “{saved.name}” saved.")
    return redirect("policy-list")


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
                errors[key] = _flatten(list(body.errors.values()))
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
            errors = _serializer_errors(serializer.errors)
        if not errors:
            try:
                notifications.notification_settings_update(
                    actor=actor,
                    email_enabled=serializer.validated_data["email_enabled"],
                    webhook_url=serializer.validated_data.get("webhook_url"),
                )
            except ApplicationError as error:
                errors = _error_fields(error)
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
