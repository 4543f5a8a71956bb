"""Inventory writes: clients, engagements, locations, datasets.

Each service checks the actor's right, validates, and saves.

Services raise ApplicationError subclasses; Django ValidationErrors from `full_clean()` carry
field messages and are mapped to 400 by the API's exception handler.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.utils.text import slugify

from clients import signals
from clients.models import (
    Client,
    Dataset,
    Engagement,
    LifecycleState,
    LocationKind,
    StorageLocation,
)
from clients.services.spaces import dataset_path_check, paths_overlap
from kernel.crypto import seal, unseal
from kernel.egress import url_check
from kernel.exceptions import Conflict, Forbidden, ValidationFailed
from kernel.tenancy import Actor

_M = TypeVar("_M", bound=models.Model)
CREDENTIALS_PURPOSE = "storage-location-credentials"


def _save(obj: _M, *, update_fields: Iterable[str] | None = None) -> _M:
    obj.full_clean()
    obj.save(update_fields=list(update_fields) if update_fields is not None else None)
    return obj


def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationFailed(
            "Some fields cannot be set.",
            fields=dict.fromkeys(sorted(unknown), "This field cannot be set."),
        )


def _apply(obj: _M, data: Mapping[str, Any], allowed: Iterable[str]) -> list[str]:
    """Set the allowed fields that differ; return their names."""
    _reject_unknown(data, allowed)
    changed = []
    for name, value in data.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed


def _unique_slug(base: str, exists: Any) -> str:
    root = slugify(base)[:70] or "item"
    slug, n = root, 2
    while exists(slug):
        slug, n = f"{root}-{n}", n + 1
    return slug


# --- clients and engagements ---

CLIENT_FIELDS = (
    "name",
    "slug",
    "status",
    "contact_name",
    "contact_email",
    "contract_reference",
    "dpa_reference",
)


@transaction.atomic
def client_create(*, actor: Actor, name: str, **fields: Any) -> Client:
    actor.require_admin("create clients")
    _reject_unknown(fields, CLIENT_FIELDS)
    client = Client(organization=actor.organization, name=name, **fields)
    if not client.slug:
        client.slug = _unique_slug(
            name, lambda s: Client.objects.filter(organization=actor.organization, slug=s).exists()
        )
    return _save(client)


@transaction.atomic
def client_update(*, actor: Actor, client: Client, data: Mapping[str, Any]) -> Client:
    actor.require_admin("edit clients")
    changed = _apply(client, data, CLIENT_FIELDS)
    return _save(client, update_fields=[*changed, "updated_at"]) if changed else client


ENGAGEMENT_FIELDS = ("name", "starts_on", "ends_on", "deletion_due_days")


@transaction.atomic
def engagement_create(*, actor: Actor, client: Client, **fields: Any) -> Engagement:
    actor.require_admin("create engagements")
    _reject_unknown(fields, ENGAGEMENT_FIELDS)
    return _save(Engagement(organization=actor.organization, client=client, **fields))


@transaction.atomic
def engagement_update(
    *, actor: Actor, engagement: Engagement, data: Mapping[str, Any]
) -> Engagement:
    actor.require_admin("edit engagements")
    changed = _apply(engagement, data, ENGAGEMENT_FIELDS)
    return _save(engagement, update_fields=changed) if changed else engagement


# --- storage locations ---

LOCATION_FIELDS = (
    "name",
    "kind",
    "provider",
    "endpoint_url",
    "region",
    "bucket",
    "prefix",
    "client",
)


def _seal_credentials(credentials: Mapping[str, str] | None) -> bytes | None:
    if not credentials:
        return None
    payload = {
        "access_key_id": credentials["access_key_id"],
        "secret_access_key": credentials["secret_access_key"],
    }
    return seal(json.dumps(payload).encode(), purpose=CREDENTIALS_PURPOSE)


def _credentials_rule(*, actor: Actor, location: StorageLocation) -> None:
    """An S3 location reaches its bucket with its own credentials. Without any it would use the
    server's own (environment, instance role): only where the operator allows that, and then
    only an owner may set it up."""
    if location.kind != LocationKind.S3 or location.credentials_sealed:
        return
    if not settings.AGENCYOPS_ALLOW_AMBIENT_CREDENTIALS:
        raise ValidationFailed(
            "An S3 location needs its own credentials.",
            fields={
                "credentials": "Give the location its own access key; the server's own "
                "credentials are not lent to storage locations."
            },
        )
    if actor.role not in ("owner", "system"):
        raise Forbidden("Only an owner may create a location that uses the server's credentials.")


def _store_identity(location: StorageLocation) -> tuple[str, str, str]:
    """(kind, endpoint, bucket): locations with the same identity share one namespace."""
    endpoint = (location.endpoint_url or "").rstrip("/").lower()
    return (location.kind, endpoint if location.kind == LocationKind.S3 else "", location.bucket)


def _root_of(location: StorageLocation) -> str:
    if location.kind == LocationKind.LOCAL:
        return location.prefix.rstrip("/") or "/"
    return location.prefix.strip("/")


def _overlapping_location(location: StorageLocation) -> StorageLocation | None:
    """Another location of the organization on the same directory tree or bucket whose root
    contains this one's or lies inside it: a dataset of one would read the other's data (and
    its backup repositories), a deletion of one would reach into the other."""
    identity, root = _store_identity(location), _root_of(location)
    others = StorageLocation.objects.filter(
        organization_id=location.organization_id, kind=location.kind
    ).exclude(pk=location.pk)
    for other in others:
        if _store_identity(other) != identity:
            continue
        other_root = _root_of(other)
        if location.kind == LocationKind.LOCAL:
            nested = Path(root).is_relative_to(other_root) or Path(other_root).is_relative_to(root)
        else:
            nested = paths_overlap(root, other_root)
        if nested:
            return other
    return None


def _location_save(
    location: StorageLocation, *, actor: Actor, update_fields: list[str] | None = None
) -> StorageLocation:
    location.full_clean()  # the operator's local roots (StorageLocation.clean)
    if location.kind == LocationKind.S3 and location.endpoint_url:
        # The egress policy: no internal or metadata address (checked again at each connect).
        location.endpoint_url = url_check(location.endpoint_url, field="endpoint_url")
    _credentials_rule(actor=actor, location=location)
    other = _overlapping_location(location)
    if other is not None:
        field = "prefix" if location.kind == LocationKind.LOCAL or location.prefix else "bucket"
        raise ValidationFailed(
            f"This location overlaps {other.name}: one lies inside the other.",
            fields={field: f"Overlaps the location {other.name}."},
        )
    location.save(update_fields=update_fields)
    return location


@transaction.atomic
def location_create(
    *, actor: Actor, credentials: Mapping[str, str] | None = None, **fields: Any
) -> StorageLocation:
    """Register a storage location. A local directory lies in the organization's folder of one
    of the operator's local roots; an S3 location brings its own credentials (sealed under the
    master key, never stored in plain text); no location lies inside another."""
    actor.require_admin("manage storage locations")
    _reject_unknown(fields, LOCATION_FIELDS)
    location = StorageLocation(organization=actor.organization, **fields)
    if credentials and location.kind == LocationKind.LOCAL:
        raise ValidationFailed(
            "A local directory takes no credentials.",
            fields={"credentials": "A local directory takes no credentials."},
        )
    location.credentials_sealed = _seal_credentials(credentials)
    return _location_save(location, actor=actor)


@transaction.atomic
def location_update(
    *,
    actor: Actor,
    location: StorageLocation,
    data: Mapping[str, Any],
    credentials: Mapping[str, str] | None = None,
) -> StorageLocation:
    """Change a location under the same rules as creating it. Its client (dedicated or shared)
    stays while datasets or client folders live on it: their space would change under them."""
    actor.require_admin("manage storage locations")
    previous_client_id = location.client_id
    changed = _apply(location, data, LOCATION_FIELDS)
    if "client" in changed:
        in_use = Dataset.objects.filter(location=location).exists() or location.namespaces.exists()
        if in_use and location.client_id != previous_client_id:
            raise Conflict(
                "Datasets or client folders live on this location; whose space it is cannot "
                "change under them."
            )
    if credentials is not None:
        location.credentials_sealed = _seal_credentials(credentials)
        changed.append("credentials_sealed")
    if not changed:
        return location
    return _location_save(location, actor=actor, update_fields=[*changed, "updated_at"])


def location_credentials(location: StorageLocation) -> dict[str, str] | None:
    """The location's plain credentials, for the storage client only. Never log the result."""
    if not location.credentials_sealed:
        return None
    data: dict[str, str] = json.loads(
        unseal(bytes(location.credentials_sealed), purpose=CREDENTIALS_PURPOSE)
    )
    return data


# --- datasets ---

DATASET_FIELDS = (
    "name",
    "kind",
    "classification",
    "contains_personal_data",
    "source",
    "location",
    "path",
    "owner",
    "rpo",
    "rto",
    "engagement",
    "lifecycle_state",
)


@transaction.atomic
def dataset_register(*, actor: Actor, client: Client, **fields: Any) -> Dataset:
    """Register a client dataset. Needs a `manage` grant on the client (or admin). Its primary
    path lies in the client's space on the location (see clients.services.spaces)."""
    actor.require_level("manage", client_id=client.pk, action="register datasets")
    _reject_unknown(fields, DATASET_FIELDS)
    if client.status == "closed":
        raise Conflict("The client is closed; no new datasets can be registered.")
    fields.setdefault("owner", actor.user)
    dataset = Dataset(
        organization=actor.organization, client=client, registered_by=actor.user, **fields
    )
    if dataset.location_id is not None:
        dataset.path = dataset_path_check(
            actor=actor, location=dataset.location, client=client, path=dataset.path
        )
    dataset = _save(dataset)
    signals.dataset_registered.send(sender=Dataset, dataset=dataset, actor=actor)
    return dataset


@transaction.atomic
def dataset_update(*, actor: Actor, dataset: Dataset, data: Mapping[str, Any]) -> Dataset:
    """Edit a dataset. A deleted dataset is a tombstone and cannot change."""
    actor.require_level(
        "manage", client_id=dataset.client_id, dataset_id=dataset.pk, action="edit datasets"
    )
    if dataset.lifecycle_state == LifecycleState.DELETED:
        raise Conflict("The dataset was deleted; its record is kept as a tombstone.")
    if data.get("lifecycle_state") in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise ValidationFailed(
            "Deletion goes through a deletion request.",
            fields={"lifecycle_state": "Use a deletion request to delete a dataset."},
        )
    previous_state = dataset.lifecycle_state
    changed = _apply(dataset, data, DATASET_FIELDS)
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
    _save(dataset, update_fields=[*changed, "updated_at"])
    if "lifecycle_state" in changed:
        signals.dataset_state_changed.send(
            sender=Dataset, dataset=dataset, previous_state=previous_state, actor=actor
        )
    return dataset
