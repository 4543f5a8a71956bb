"""Storage location writes: a bucket or directory registered once, with its credentials sealed.

Each service checks the actor's right, validates, and saves; its keyword arguments are the
fields a caller may set (an update's default to `UNCHANGED`, see clients.services.common).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from clients.models import DATABASE_KINDS, Client, Dataset, LocationKind, StorageLocation
from clients.services.common import UNCHANGED, Unchanged, changes_apply
from clients.services.spaces import paths_overlap
from kernel.crypto import seal, unseal
from kernel.egress import REFUSED_MESSAGE, host_permitted, url_check
from kernel.exceptions import Conflict, Forbidden, ValidationFailed
from kernel.sources import database_server_check, git_base_check
from kernel.tenancy import Actor

CREDENTIALS_PURPOSE = "storage-location-credentials"


# The credentials each kind takes, as alternatives: exactly one shape, every field given.
CREDENTIAL_SHAPES: dict[str, tuple[tuple[str, ...], ...]] = {
    LocationKind.S3: (("access_key_id", "secret_access_key"),),
    LocationKind.GIT: (("username", "token"), ("ssh_private_key",)),
    LocationKind.POSTGRES: (("username", "password"), ("username",)),
    LocationKind.MYSQL: (("username", "password"), ("username",)),
}


def _shape_words(shapes: tuple[tuple[str, ...], ...]) -> str:
    return " or ".join("{" + ", ".join(shape) + "}" for shape in shapes)


def _seal_credentials(kind: str, credentials: Mapping[str, str] | None) -> bytes | None:
    """The credentials in the one shape the kind takes, sealed; a 400 naming the shapes
    otherwise. Nothing else given is kept."""
    given = {k: v for k, v in (credentials or {}).items() if v not in ("", None)}
    if not given:
        return None
    shapes = CREDENTIAL_SHAPES.get(kind)
    if shapes is None:
        raise ValidationFailed(
            "This kind of location takes no credentials.",
            fields={"credentials": "This kind of location takes no credentials."},
        )
    shape = next((s for s in shapes if set(s) == set(given)), None)
    if shape is None:
        raise ValidationFailed(
            f"Credentials for this location are {_shape_words(shapes)}.",
            fields={"credentials": f"Give {_shape_words(shapes)}."},
        )
    if "ssh_private_key" in given and "PRIVATE KEY" not in given["ssh_private_key"]:
        raise ValidationFailed(
            "That is not a private key.",
            fields={"credentials": "Paste an OpenSSH private key (-----BEGIN … PRIVATE KEY-----)."},
        )
    payload = {name: given[name] for name in shape}
    return seal(json.dumps(payload).encode(), purpose=CREDENTIALS_PURPOSE)


def _source_host_check(location: StorageLocation) -> None:
    """A git host or database server is connected to by the workers: its host follows the
    egress policy (checked again, on the address, at every connection)."""
    if location.kind == LocationKind.GIT:
        scheme, host, _port = git_base_check(location.endpoint_url)
        if scheme == "file":
            return
    elif location.kind in DATABASE_KINDS:
        host, _port = database_server_check(location.kind, location.endpoint_url)
    else:
        return
    if not host_permitted(host):
        raise ValidationFailed(REFUSED_MESSAGE, fields={"endpoint_url": REFUSED_MESSAGE})


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
    if location.kind == LocationKind.GIT:
        # A git host's repositories are its URL's path: the root is that path, below.
        parts = urlsplit(endpoint)
        return (location.kind, f"{parts.scheme}://{parts.netloc}", "")
    return (location.kind, endpoint if location.kind == LocationKind.S3 else "", location.bucket)


def _root_of(location: StorageLocation) -> str:
    if location.kind == LocationKind.LOCAL:
        return location.prefix.rstrip("/") or "/"
    if location.kind == LocationKind.GIT:
        return urlsplit(location.endpoint_url).path.strip("/")
    return location.prefix.strip("/")


def _overlapping_location(location: StorageLocation) -> StorageLocation | None:
    """Another location of the organization on the same directory tree or bucket whose root
    contains this one's or lies inside it: a dataset of one would read the other's data (and
    its backup repositories), a deletion of one would reach into the other."""
    if location.kind in DATABASE_KINDS or location.kind == LocationKind.SAAS:
        # Several clients' locations may name one database server (each with its own
        # credentials); a database belongs to one dataset only (clients.services.spaces).
        return None
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
    _source_host_check(location)
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
    *,
    actor: Actor,
    name: str,
    kind: str,
    provider: str,
    endpoint_url: str = "",
    region: str = "",
    bucket: str = "",
    prefix: str = "",
    client: Client | None = None,
    credentials: Mapping[str, str] | None = None,
) -> StorageLocation:
    """Register a storage location. A local directory lies in the organization's folder of one
    of the operator's local roots; an S3 location brings its own credentials (sealed under the
    master key, never stored in plain text); no location lies inside another."""
    actor.require_admin("manage storage locations")
    location = StorageLocation(
        organization=actor.organization,
        name=name,
        kind=kind,
        provider=provider,
        endpoint_url=endpoint_url,
        region=region,
        bucket=bucket,
        prefix=prefix,
        client=client,
    )
    if credentials and location.kind == LocationKind.LOCAL:
        raise ValidationFailed(
            "A local directory takes no credentials.",
            fields={"credentials": "A local directory takes no credentials."},
        )
    location.credentials_sealed = _seal_credentials(location.kind, credentials)
    return _location_save(location, actor=actor)


@transaction.atomic
def location_update(
    *,
    actor: Actor,
    location: StorageLocation,
    name: str | Unchanged = UNCHANGED,
    kind: str | Unchanged = UNCHANGED,
    provider: str | Unchanged = UNCHANGED,
    endpoint_url: str | Unchanged = UNCHANGED,
    region: str | Unchanged = UNCHANGED,
    bucket: str | Unchanged = UNCHANGED,
    prefix: str | Unchanged = UNCHANGED,
    client: Client | Unchanged | None = UNCHANGED,
    credentials: Mapping[str, str] | Unchanged | None = UNCHANGED,
) -> StorageLocation:
    """Change a location under the same rules as creating it (credentials None: none of its
    own any more). Its client (dedicated or shared) stays while datasets or client folders live
    on it: their space would change under them."""
    actor.require_admin("manage storage locations")
    previous_client_id = location.client_id
    changed = changes_apply(
        location,
        {
            "name": name,
            "kind": kind,
            "provider": provider,
            "endpoint_url": endpoint_url,
            "region": region,
            "bucket": bucket,
            "prefix": prefix,
            "client": client,
        },
    )
    if "client" in changed:
        in_use = Dataset.objects.filter(location=location).exists() or location.namespaces.exists()
        if in_use and location.client_id != previous_client_id:
            raise Conflict(
                "Datasets or client folders live on this location; whose space it is cannot "
                "change under them."
            )
    if credentials is not UNCHANGED:
        location.credentials_sealed = _seal_credentials(location.kind, credentials)
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
