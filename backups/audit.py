"""django-auditlog registration for backup configuration; keys never enter the audit trail."""

from __future__ import annotations

from auditlog.registry import auditlog


def register_models() -> None:
    from backups.models import BackupPolicy, DatasetProtection, PolicyTarget

    for model in (BackupPolicy, PolicyTarget):
        if not auditlog.contains(model):
            auditlog.register(model)
    if not auditlog.contains(DatasetProtection):
        auditlog.register(DatasetProtection, exclude_fields=["wrapped_key", "lock_wrapping_key"])
    # --- posture fixes: each change an admin applies to a bucket's settings ---
    from backups.models import PostureFix

    if not auditlog.contains(PostureFix):
        auditlog.register(PostureFix)
