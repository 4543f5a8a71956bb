"""Tenant reads for the assurance pages: tracked copies, one policy, alerts filtered."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from backups.models import BackupPolicy, DataCopy
from backups.selectors import alert_list, policy_list
from kernel.tenancy import Actor, get_visible_or_404


def policy_get(*, actor: Actor, public_id: Any) -> BackupPolicy:
    return get_visible_or_404(policy_list(actor=actor), public_id)


def data_copy_list(*, actor: Actor) -> QuerySet[DataCopy]:
    """Copies the product wrote (restores, downloads, drill scratch) of the datasets the actor
    sees, oldest first."""
    return DataCopy.objects.visible_to(actor).select_related(
        "dataset", "snapshot", "snapshot__location", "location", "made_by"
    )


def alert_list_filtered(
    *,
    actor: Actor,
    state: str | None = None,
    kind: str | None = None,
    client_public_id: Any = None,
) -> Any:
    """The alerts the actor sees, narrowed like the API's filter (state, kind, client)."""
    alerts = alert_list(actor=actor)
    if state:
        alerts = alerts.filter(state=state)
    if kind:
        alerts = alerts.filter(kind=kind)
    if client_public_id is not None:
        alerts = alerts.filter(client__public_id=client_public_id)
    return alerts
