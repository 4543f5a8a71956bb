"""The organization's deletion settings: how many distinct admins approve a deletion."""

from __future__ import annotations

from django.db import transaction

from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor
from lifecycle.models import DeletionSettings

APPROVAL_CHOICES = (1, 2)


def deletion_settings_get(*, actor: Actor) -> DeletionSettings:
    """The organization's settings, or the defaults (one approver) unsaved."""
    found: DeletionSettings | None = DeletionSettings.objects.filter(
        organization_id=actor.organization_id
    ).first()
    return found or DeletionSettings(organization_id=actor.organization_id)


@transaction.atomic
def deletion_settings_update(*, actor: Actor, approvals_required: int) -> DeletionSettings:
    """Owners and admins choose one or two approvers (four or six eyes). Requests already
    drafted keep the number they were drafted with."""
    actor.require_admin("change the deletion settings")
    if approvals_required not in APPROVAL_CHOICES:
        raise ValidationFailed(
            "One or two approvers.",
            fields={"approvals_required": "Choose one or two approvers."},
        )
    row, _ = DeletionSettings.objects.select_for_update().get_or_create(
        organization_id=actor.organization_id
    )
    row.approvals_required = approvals_required
    row.full_clean()
    row.save(update_fields=["approvals_required"])
    return row
