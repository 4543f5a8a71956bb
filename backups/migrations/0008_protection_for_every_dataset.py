"""Give every dataset that has none its protection row (new datasets get it when they are
registered; before, it was made on first use, by whatever read it, GET pages included)."""

import importlib
from typing import Any

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

from backups.engine import generate_data_key, wrap_data_key
from kernel.crypto import master_key

# The built-in policies as migration 0002 froze them, for an organization that lacks one.
DEFAULTS: dict[str, dict[str, Any]] = importlib.import_module(
    "backups.migrations.0002_default_policies"
).DEFAULTS


def _default_key(kind: str, state: str) -> str:
    # Frozen copy of backups.services.policies.default_policy_key (not a live pipeline input).
    if state == "archived":
        return "monthly"
    if kind == "code_repository":
        return "continuous"
    if kind == "business_records":
        return "records"
    if kind == "infrastructure_config" or (kind == "model_artifact" and state == "completed"):
        return "weekly"
    return "daily"


def protect_every_dataset(apps: Any, schema_editor: Any) -> None:
    dataset_model = apps.get_model("clients", "Dataset")
    policy_model = apps.get_model("backups", "BackupPolicy")
    protection_model = apps.get_model("backups", "DatasetProtection")
    target_model = apps.get_model("backups", "PolicyTarget")
    schedule_model = apps.get_model("backups", "BackupSchedule")
    # A deleted dataset's key was destroyed on purpose: it never gets a new one.
    missing = (
        dataset_model.objects.filter(protection__isnull=True)
        .exclude(lifecycle_state="deleted")
        .order_by("pk")
    )
    now = timezone.now()
    for dataset in missing:
        key = _default_key(dataset.kind, dataset.lifecycle_state)
        policy, _ = policy_model.objects.get_or_create(
            organization_id=dataset.organization_id, default_for=key, defaults=DEFAULTS[key]
        )
        protection_model.objects.create(
            organization_id=dataset.organization_id,
            dataset=dataset,
            policy=policy,
            wrapped_key=wrap_data_key(
                master_key(), generate_data_key(), context=b"dataset:" + dataset.public_id.bytes
            ),
        )
        # As schedules_sync: one schedule per target that may hold this client's backups.
        locations = target_model.objects.filter(policy=policy).filter(
            Q(location__client__isnull=True) | Q(location__client_id=dataset.client_id)
        )
        for location_id in set(locations.values_list("location_id", flat=True)):
            schedule_model.objects.get_or_create(
                dataset=dataset,
                location_id=location_id,
                defaults={"organization_id": dataset.organization_id, "next_due_at": now},
            )


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0007_deletion_awaiting_alert"),
        ("clients", "0005_grantrequest_days_follow_setting"),
    ]

    operations = [migrations.RunPython(protect_every_dataset, migrations.RunPython.noop)]
