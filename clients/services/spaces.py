"""A client's space on a storage location, and the rules for every path a tenant names in it.

A location dedicated to one client is that client's whole space. On a shared location each client
gets a folder (its namespace, assigned by an owner or admin): its datasets' primary paths and its
restores lie inside that folder, and no two clients' folders overlap. Nothing a tenant names may
overlap the product's own places on a location: the backup repositories (`<organization id>/…`,
see backups.services.stores.repository_base), the operator's self-backup (`_agencyops-self/`) and
storage access logs (`_logs/`, a shared bucket's logs name every client's objects).

Paths here are relative to the location ('/'-separated, no '.', '..' or empty parts); the storage
layer maps them onto the bucket prefix or the directory.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from clients import signals
from clients.models import (
    DATABASE_KINDS,
    Client,
    ClientNamespace,
    Dataset,
    LifecycleState,
    LocationKind,
    StorageLocation,
)
from kernel.exceptions import Conflict, ValidationFailed
from kernel.sources import (
    SourceNameInvalid,
    database_name_check,
    database_server_check,
    repository_path_check,
)
from kernel.tenancy import LEVELS, Actor

# The product's own top-level folders on a location, besides the organization's repository
# folder (named by the organization's public id).
PRODUCT_FOLDERS = ("_agencyops-self", "_logs")
MAX_PATH = 1024


def relative_path_clean(value: str, *, field: str, allow_empty: bool = False) -> str:
    """A relative '/'-separated path without surrounding slashes. Refuses '.', '..' and empty
    parts ('a//b'), NUL and control characters, and the empty path unless `allow_empty`."""
    if not isinstance(value, str) or len(value) > MAX_PATH:
        raise ValidationFailed("Invalid path.", fields={field: f"At most {MAX_PATH} characters."})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationFailed(
            "Invalid path.", fields={field: "The path may not contain control characters."}
        )
    if value.startswith("/"):
        raise ValidationFailed(
            "Invalid path.",
            fields={field: "The path is relative to the location and may not contain '..'."},
        )
    cleaned = value.strip("/")
    if not cleaned:
        if allow_empty:
            return ""
        raise ValidationFailed(
            "Invalid path.", fields={field: "Give a folder, not the whole location."}
        )
    if any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise ValidationFailed(
            "Invalid path.",
            fields={field: "The path may not contain '..', '.' or empty parts ('//')."},
        )
    return cleaned


def path_within(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it (by whole path parts: 'acme2' is not in
    'acme'). Every path lies within the whole location ('')."""
    return folder == "" or path == folder or path.startswith(folder + "/")


def paths_overlap(a: str, b: str) -> bool:
    return path_within(a, b) or path_within(b, a)


def product_folders(location: StorageLocation) -> tuple[str, ...]:
    return (str(location.organization.public_id), *PRODUCT_FOLDERS)


def client_space(location: StorageLocation, client: Client) -> str | None:
    """The client's space on the location: "" (all of it) on a location dedicated to the client,
    its folder on a shared location, None when it has none there."""
    if location.client_id is not None:
        return "" if location.client_id == client.pk else None
    namespace = ClientNamespace.objects.filter(location=location, client=client).first()
    return namespace.path if namespace is not None else None


def client_space_check(
    *,
    location: StorageLocation,
    client: Client,
    path: str,
    field: str,
    allow_whole: bool = True,
    location_field: str = "location",
) -> str:
    """The cleaned path if it lies in the client's space on the location, clear of the
    product's own folders; a 400 on `field` otherwise. The whole location ("") is the client's
    only on a location dedicated to it (and only where `allow_whole`)."""
    space = client_space(location, client)
    if space is None:
        if location.client_id is not None:
            raise ValidationFailed(
                "This location is dedicated to another client.",
                fields={location_field: "This location is dedicated to another client."},
            )
        raise ValidationFailed(
            f"{client.name} has no folder on {location.name}; an owner or admin assigns one "
            "(POST /api/v1/namespaces/).",
            fields={field: f"{client.name} has no folder on this location yet."},
        )
    cleaned = relative_path_clean(path, field=field, allow_empty=allow_whole and space == "")
    if not path_within(cleaned, space):
        raise ValidationFailed(
            f"The path must lie inside {client.name}'s folder '{space}' on {location.name}.",
            fields={field: f"Must lie inside the client's folder '{space}'."},
        )
    for folder in product_folders(location):
        if cleaned and paths_overlap(cleaned, folder):
            raise ValidationFailed(
                "This path is kept for AgencyOps' own data (backup repositories, logs).",
                fields={field: f"'{folder}' is reserved on every location."},
            )
    return cleaned


def dataset_path_check(
    *,
    actor: Actor,
    location: StorageLocation,
    client: Client,
    path: str,
    dataset: Dataset | None = None,
) -> str:
    """A dataset's primary path: inside its client's space, clear of the product's folders and
    of what the other apps keep on the location (they refuse through
    `signals.dataset_path_checking`, e.g. a whole location that holds backup repositories).
    Only someone who sees the whole client (an admin, a client-wide `manage` grant) may lay a
    dataset over another one's data: a grant on one dataset never reaches its siblings.
    A database server's path is one database (`database_path_check`); a git host's is a
    repository under its URL, in the client's space like a folder; a SaaS tool's is a label."""
    if location.kind in DATABASE_KINDS:
        return database_path_check(location=location, client=client, path=path, dataset=dataset)
    if location.kind == LocationKind.SAAS:
        return relative_path_clean(path, field="path", allow_empty=True)
    if location.kind == LocationKind.GIT:
        path = _source_name(repository_path_check, path, field="path")
    cleaned = client_space_check(location=location, client=client, path=path, field="path")
    sees_whole_client = actor.level_on(client_id=client.pk) >= LEVELS["manage"]
    if not sees_whole_client and other_dataset_overlapping(
        location=location, path=cleaned, exclude=dataset
    ):
        raise ValidationFailed(
            "The path overlaps another dataset's data.",
            fields={"path": "Overlaps another dataset; pick a folder of its own."},
        )
    signals.dataset_path_checking.send(sender=Dataset, location=location, path=cleaned)
    return cleaned


def _source_name(check: Callable[[str], str], value: str, *, field: str) -> str:
    try:
        return check(value)
    except SourceNameInvalid as exc:
        raise ValidationFailed(str(exc), fields={field: str(exc)}) from None


def _server_of(location: StorageLocation) -> tuple[str, str, int]:
    host, port = database_server_check(location.kind, location.endpoint_url)
    return (location.kind, host.lower(), port)


def database_path_check(
    *,
    location: StorageLocation,
    client: Client,
    path: str,
    dataset: Dataset | None = None,
    field: str = "path",
) -> str:
    """A database on a database server location: the location is the client's (a database
    server location is dedicated to one client), the name is an identifier, and no other live
    dataset of the organization names the same database on the same server (through any
    location: another client's location on that server included)."""
    if location.client_id != client.pk:
        raise ValidationFailed(
            "This database server location is dedicated to another client.",
            fields={"location": "This location is dedicated to another client."},
        )
    name = _source_name(database_name_check, path, field=field)
    server = _server_of(location)
    others = (
        Dataset.objects.filter(organization_id=location.organization_id, path=name)
        .filter(location__kind=location.kind)
        .exclude(lifecycle_state=LifecycleState.DELETED)
        .select_related("location")
    )
    if dataset is not None:
        others = others.exclude(pk=dataset.pk)
    if any(_server_of(other.location) == server for other in others):
        raise ValidationFailed(
            "Another dataset already names this database on this server.",
            fields={field: "This database is another dataset's."},
        )
    return name


def other_dataset_overlapping(
    *, location: StorageLocation, path: str, exclude: Dataset | None = None
) -> Dataset | None:
    """A live dataset (other than `exclude`) whose primary path on the location overlaps `path`:
    a restore written there would mix into, or overwrite, another dataset's data."""
    candidates = Dataset.objects.filter(location=location).exclude(
        lifecycle_state=LifecycleState.DELETED
    )
    if exclude is not None:
        candidates = candidates.exclude(pk=exclude.pk)
    for dataset in candidates.only("pk", "path", "name"):
        if paths_overlap(dataset.path.strip("/"), path):
            return dataset
    return None


# --- namespaces ---


@transaction.atomic
def namespace_assign(
    *, actor: Actor, location: StorageLocation, client: Client, path: str
) -> ClientNamespace:
    """Owners and admins give a client its folder on a shared location. Refused on a location
    dedicated to a client; when the client already has a folder there; when the folder overlaps
    another client's folder, the product's own folders, or another client's dataset already on
    the location (its data would fall inside this client's space)."""
    actor.require_admin("assign client folders")
    if client.organization_id != location.organization_id:
        raise ValidationFailed("Another organization's client.", fields={"client": "Not found."})
    if location.client_id is not None:
        raise ValidationFailed(
            f"{location.name} is dedicated to one client: the whole location is its space.",
            fields={"location": "A dedicated location needs no client folders."},
        )
    cleaned = relative_path_clean(path, field="path")
    for folder in product_folders(location):
        if paths_overlap(cleaned, folder):
            raise ValidationFailed(
                "This folder is kept for AgencyOps' own data.",
                fields={"path": f"'{folder}' is reserved on every location."},
            )
    locked = ClientNamespace.objects.select_for_update().filter(location=location)
    for other in locked.select_related("client"):
        if other.client_id == client.pk:
            raise Conflict(f"{client.name} already has the folder '{other.path}' here.")
        if paths_overlap(other.path, cleaned):
            raise ValidationFailed(
                "The folder overlaps another client's folder.",
                fields={"path": f"Overlaps '{other.path}', the folder of {other.client.name}."},
            )
    for dataset in Dataset.objects.filter(location=location).exclude(client=client):
        if dataset.lifecycle_state != LifecycleState.DELETED and paths_overlap(
            dataset.path.strip("/"), cleaned
        ):
            raise ValidationFailed(
                "Another client's data is already inside this folder.",
                fields={"path": "Overlaps a dataset of another client."},
            )
    namespace = ClientNamespace(
        organization=location.organization,
        location=location,
        client=client,
        path=cleaned,
        created_by=actor.user,
    )
    namespace.full_clean()
    namespace.save()
    return namespace


@transaction.atomic
def namespace_remove(*, actor: Actor, namespace: ClientNamespace) -> None:
    """Take a client's folder back; refused while any of the client's datasets lives there."""
    actor.require_admin("remove client folders")
    in_use = Dataset.objects.filter(location=namespace.location, client=namespace.client).exclude(
        lifecycle_state=LifecycleState.DELETED
    )
    if any(path_within(d.path.strip("/"), namespace.path) for d in in_use.only("path")):
        raise Conflict("Datasets of the client live in this folder; move or delete them first.")
    namespace.delete()
