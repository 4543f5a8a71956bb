"""Inventory writes: clients, engagements, datasets (storage locations: `locations`).

Each service checks the actor's right, validates, and saves. Its keyword arguments are the
fields a caller may set, written once: the API passes its serializer's validated data into
them. An update's arguments default to `UNCHANGED` (see clients.services.common).

Services raise ApplicationError subclasses; Django ValidationErrors from `full_clean()` carry
field messages and are mapped to 400 by the API's exception handler.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.models import User
from django.db import transaction

from clients import signals
from clients.models import (
    DEFAULT_DELETION_DUE_DAYS,
    DEFAULT_RPO,
    DEFAULT_RTO,
    Classification,
    Client,
    ClientStatus,
    Dataset,
    Engagement,
    EngagementStatus,
    LifecycleState,
    StorageLocation,
)
from clients.services.common import UNCHANGED, Unchanged, changes_apply, unique_slug, validated_save
from clients.services.spaces import dataset_path_check
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import Actor

# --- clients and engagements ---


@transaction.atomic
def client_create(
    *,
    actor: Actor,
    name: str,
    slug: str = "",
    status: str = ClientStatus.ACTIVE,
    contact_name: str = "",
    contact_email: str = "",
    contract_reference: str = "",
    dpa_reference: str = "",
) -> Client:
    """Add a client (owners, admins). Without a slug it gets one from its name, unique in the
    organization."""
    actor.require_admin("create clients")
    client = Client(
        organization=actor.organization,
        name=name,
        slug=slug,
        status=status,
        contact_name=contact_name,
        contact_email=contact_email,
        contract_reference=contract_reference,
        dpa_reference=dpa_reference,
    )
    if not client.slug:
        client.slug = unique_slug(
            name, lambda s: Client.objects.filter(organization=actor.organization, slug=s).exists()
        )
    return validated_save(client)


@transaction.atomic
def client_update(
    *,
    actor: Actor,
    client: Client,
    name: str | Unchanged = UNCHANGED,
    slug: str | Unchanged = UNCHANGED,
    status: str | Unchanged = UNCHANGED,
    contact_name: str | Unchanged = UNCHANGED,
    contact_email: str | Unchanged = UNCHANGED,
    contract_reference: str | Unchanged = UNCHANGED,
    dpa_reference: str | Unchanged = UNCHANGED,
) -> Client:
    actor.require_admin("edit clients")
    changed = changes_apply(
        client,
        {
            "name": name,
            "slug": slug,
            "status": status,
            "contact_name": contact_name,
            "contact_email": contact_email,
            "contract_reference": contract_reference,
            "dpa_reference": dpa_reference,
        },
    )
    return validated_save(client, update_fields=[*changed, "updated_at"]) if changed else client


@transaction.atomic
def engagement_create(
    *,
    actor: Actor,
    client: Client,
    name: str,
    starts_on: date,
    ends_on: date | None = None,
    deletion_due_days: int = DEFAULT_DELETION_DUE_DAYS,
) -> Engagement:
    actor.require_admin("create engagements")
    engagement = Engagement(
        organization=actor.organization,
        client=client,
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        deletion_due_days=deletion_due_days,
    )
    return validated_save(engagement)


@transaction.atomic
def engagement_update(
    *,
    actor: Actor,
    engagement: Engagement,
    name: str | Unchanged = UNCHANGED,
    starts_on: date | Unchanged = UNCHANGED,
    ends_on: date | Unchanged | None = UNCHANGED,
    deletion_due_days: int | Unchanged = UNCHANGED,
) -> Engagement:
    actor.require_admin("edit engagements")
    changed = changes_apply(
        engagement,
        {
            "name": name,
            "starts_on": starts_on,
            "ends_on": ends_on,
            "deletion_due_days": deletion_due_days,
        },
    )
    return validated_save(engagement, update_fields=changed) if changed else engagement


@transaction.atomic
def engagement_end_record(
    *, actor: Actor, engagement: Engagement, ends_on: date
) -> Engagement:
    """Mark an engagement ended on `ends_on` (lifecycle's `engagement_end` then computes the
    obligations' due dates). Once only: a second end is a conflict."""
    actor.require_admin("end engagements")
    engagement = Engagement.objects.select_for_update().get(pk=engagement.pk)
    if engagement.status == EngagementStatus.ENDED:
        raise Conflict("The engagement has already ended.")
    engagement.ends_on = ends_on
    engagement.status = EngagementStatus.ENDED
    return validated_save(engagement, update_fields=["ends_on", "status"])


# --- datasets ---


@transaction.atomic
def dataset_register(
    *,
    actor: Actor,
    client: Client,
    name: str,
    kind: str,
    location: StorageLocation,
    path: str = "",
    classification: str = Classification.CONFIDENTIAL,
    contains_personal_data: bool = False,
    source: str = "",
    owner: User | None = None,
    rpo: timedelta = DEFAULT_RPO,
    rto: timedelta = DEFAULT_RTO,
    engagement: Engagement | None = None,
    lifecycle_state: str = LifecycleState.ACTIVE,
) -> Dataset:
    """Register a client dataset. Needs a `manage` grant on the client (or admin). Its primary
    path lies in the client's space on the location (see clients.services.spaces); its owner,
    unless named, is whoever registers it."""
    actor.require_level("manage", client_id=client.pk, action="register datasets")
    if client.status == "closed":
        raise Conflict("The client is closed; no new datasets can be registered.")
    dataset = Dataset(
        organization=actor.organization,
        client=client,
        registered_by=actor.user,
        name=name,
        kind=kind,
        location=location,
        path=dataset_path_check(actor=actor, location=location, client=client, path=path),
        classification=classification,
        contains_personal_data=contains_personal_data,
        source=source,
        owner=owner if owner is not None else actor.user,
        rpo=rpo,
        rto=rto,
        engagement=engagement,
        lifecycle_state=lifecycle_state,
    )
    dataset = validated_save(dataset)
    signals.dataset_registered.send(sender=Dataset, dataset=dataset, actor=actor)
    return dataset


@transaction.atomic
def dataset_update(
    *,
    actor: Actor,
    dataset: Dataset,
    name: str | Unchanged = UNCHANGED,
    kind: str | Unchanged = UNCHANGED,
    location: StorageLocation | Unchanged = UNCHANGED,
    path: str | Unchanged = UNCHANGED,
    classification: str | Unchanged = UNCHANGED,
    contains_personal_data: bool | Unchanged = UNCHANGED,
    source: str | Unchanged = UNCHANGED,
    owner: User | Unchanged | None = UNCHANGED,
    rpo: timedelta | Unchanged = UNCHANGED,
    rto: timedelta | Unchanged = UNCHANGED,
    engagement: Engagement | Unchanged | None = UNCHANGED,
    lifecycle_state: str | Unchanged = UNCHANGED,
) -> Dataset:
    """Edit a dataset. A deleted dataset is a tombstone and cannot change; deletion itself goes
    through a deletion request."""
    actor.require_level(
        "manage", client_id=dataset.client_id, dataset_id=dataset.pk, action="edit datasets"
    )
    if dataset.lifecycle_state == LifecycleState.DELETED:
        raise Conflict("The dataset was deleted; its record is kept as a tombstone.")
    if lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise ValidationFailed(
            "Deletion goes through a deletion request.",
            fields={"lifecycle_state": "Use a deletion request to delete a dataset."},
        )
    previous_state = dataset.lifecycle_state
    changed = changes_apply(
        dataset,
        {
            "name": name,
            "kind": kind,
            "location": location,
            "path": path,
            "classification": classification,
            "contains_personal_data": contains_personal_data,
            "source": source,
            "owner": owner,
            "rpo": rpo,
            "rto": rto,
            "engagement": engagement,
            "lifecycle_state": lifecycle_state,
        },
    )
    if not changed:
        return dataset
    if {"location", "path"} & set(changed):
        # A lead can never widen a path beyond the client's space: the new place is checked
        # like a new registration.
        dataset.path = dataset_path_check(
            actor=actor,
            location=dataset.location,
            client=dataset.client,
            path=dataset.path,
            dataset=dataset,
        )
    validated_save(dataset, update_fields=[*changed, "updated_at"])
    if "lifecycle_state" in changed:
        signals.dataset_state_changed.send(
            sender=Dataset, dataset=dataset, previous_state=previous_state, actor=actor
        )
    return dataset
