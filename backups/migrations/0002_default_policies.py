"""Give every existing organization the built-in backup policies (new ones get them at creation)."""

from typing import Any

from django.db import migrations

# Frozen copy of the guidance at the time of this migration (see backups.services.policies).
DEFAULTS: dict[str, dict[str, Any]] = {
    "continuous": {
        "name": "Continuous — code and live pipeline inputs",
        "frequency": "continuous",
        "keep_last": 8,
        "keep_hourly": 48,
        "keep_daily": 30,
        "keep_monthly": 12,
    },
    "records": {
        "name": "Continuous — business records (monthly kept forever)",
        "frequency": "continuous",
        "keep_last": 8,
        "keep_hourly": 48,
        "keep_daily": 30,
        "keep_monthly": -1,
    },
    "daily": {
        "name": "Daily — active client data",
        "frequency": "daily",
        "keep_daily": 30,
        "keep_monthly": 12,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
    "weekly": {
        "name": "Weekly — completed models and infrastructure config",
        "frequency": "weekly",
        "keep_weekly": 12,
        "keep_monthly": 12,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
    "monthly": {
        "name": "Monthly — archived data",
        "frequency": "monthly",
        "keep_monthly": 24,
        "keep_yearly": 7,
        "infrequent_access_after_days": 30,
        "archive_after_days": 90,
    },
}


def create_defaults(apps: Any, schema_editor: Any) -> None:
    organization_model = apps.get_model("clients", "Organization")
    policy_model = apps.get_model("backups", "BackupPolicy")
    for organization in organization_model.objects.all():
        for key, fields in DEFAULTS.items():
            policy_model.objects.get_or_create(
                organization=organization, default_for=key, defaults=fields
            )


class Migration(migrations.Migration):
    dependencies = [("backups", "0001_initial"), ("clients", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
