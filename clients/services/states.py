"""A dataset's lifecycle state, set by the apps above (a deletion), with the signal it promises."""

from __future__ import annotations

from django.db import transaction

from clients import signals
from clients.models import Dataset, LifecycleState
from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor


@transaction.atomic
def dataset_state_set(*, actor: Actor, dataset: Dataset, state: str) -> Dataset:
    """Move a dataset to a lifecycle state and send `dataset_state_changed`. This is the way
    into the deletion states, which editing refuses (a deletion request marks its datasets
    deletion_pending, then deleted). A deleted dataset is a tombstone: it keeps its state.
    Admins and system tasks only. Setting the state it already has changes and sends nothing."""
    actor.require_admin("change a dataset's lifecycle state")
    if state not in LifecycleState.values:
        raise ValidationFailed(
            "Unknown lifecycle state.", fields={"lifecycle_state": "Unknown state."}
        )
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    previous_state = locked.lifecycle_state
    dataset.lifecycle_state = previous_state
    if previous_state in (state, LifecycleState.DELETED):
        return dataset
    dataset.lifecycle_state = state
    # Only the state: the caller's copy of the other fields may be older than the row's.
    dataset.save(update_fields=["lifecycle_state", "updated_at"])
    signals.dataset_state_changed.send(
        sender=Dataset, dataset=dataset, previous_state=previous_state, actor=actor
    )
    return dataset
