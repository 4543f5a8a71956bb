"""Backup policy pages: the list (every member reads it), new and edit with the ordered
targets (owners and admins). Input is validated by the API's PolicySerializer, then saved by
policy_create / policy_update; a refusal re-renders the form with what was typed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from backups import selectors
from backups.api.core import PolicySerializer
from backups.models import BackupPolicy, Frequency, LockMode, StorageClass
from backups.pages.errors import Errors, error_fields, serializer_errors
from backups.selectors.assurance import policy_get
from backups.services import TargetRetention, policy_create, policy_update
from backups.services.rpo import policy_rpo_floor
from clients.selectors import location_list
from kernel.exceptions import ApplicationError
from kernel.pages import TenantHttpRequest, tenant_page

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
        return None, values, serializer_errors(serializer.errors), 400
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
        return None, values, error_fields(error), status
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
