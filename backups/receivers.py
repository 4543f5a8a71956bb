"""What the backup app does when the inventory changes (clients.signals contracts)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from backups import services
from backups.services.schedules import DELETION_STATES
from clients import signals


@receiver(signals.organization_created, dispatch_uid="backups.default_policies")
def _default_policies(sender: Any, organization: Any, **kwargs: Any) -> None:
    services.policies_create_defaults(organization)


@receiver(signals.dataset_registered, dispatch_uid="backups.protect_new_dataset")
def _protect_new_dataset(sender: Any, dataset: Any, **kwargs: Any) -> None:
    services.protection_create(dataset)


@receiver(signals.dataset_state_changed, dispatch_uid="backups.follow_state")
def _follow_state(sender: Any, dataset: Any, **kwargs: Any) -> None:
    if dataset.lifecycle_state in DELETION_STATES:
        return  # a deletion owns the dataset now: its policy stays as the plan saw it
    services.protection_follow_state(dataset)


@receiver(signals.dataset_path_checking, dispatch_uid="backups.primary_path_guard")
def _primary_path_guard(sender: Any, location: Any, path: str, **kwargs: Any) -> None:
    services.primary_path_guard(location=location, path=path)
