"""The tombstone of a deleted dataset, for the backup app's dataset page (a template may load
any app's tags; the backup app itself does not import this one)."""

from __future__ import annotations

from typing import Any

from django import template

from clients.models import Dataset, LifecycleState
from kernel.tenancy import Actor
from lifecycle.selectors import dataset_deletion_get

register = template.Library()


@register.inclusion_tag("lifecycle/tags/dataset_tombstone.html")
def dataset_tombstone(dataset: Dataset, actor: Actor | None) -> dict[str, Any]:
    """ "Deleted on <day>" with the deletion request that proves it (its certificate), or that
    the deletion is under way; nothing for a dataset that is not being deleted."""
    gone = dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING)
    deletion = dataset_deletion_get(actor=actor, dataset=dataset) if gone and actor else None
    return {
        "dataset": dataset,
        "gone": gone,
        "deleted": dataset.lifecycle_state == LifecycleState.DELETED,
        "deletion": deletion,
    }
