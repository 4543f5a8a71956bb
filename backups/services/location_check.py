""" "Test connection" for a storage location: reach it the way the engine does — the same
store-opening path (`backups.services.stores`: the operator's local roots, the location's own
credentials, the egress policy judged on the address connected to) and the same source path
(`backups.services.sources`: the pinned address, the sealed credentials) — and say what was
checked, or why it failed, in words fit for the tenant (no secret, no internals)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from backups.services.posture.reading import NOT_REACHABLE
from backups.services.sources import database_server
from backups.services.stores import bucket_settings_store, local_directory
from backups.sources import mysql, postgres
from backups.sources.process import SourceError
from backups.storage import (
    AccessDenied,
    EndpointUnreachable,
    StorageError,
    StoreNotFound,
)
from backups.storage.errors import IncompleteBody
from backups.storage.s3.egress import REFUSED
from clients.models import LocationKind, StorageLocation
from kernel.crypto import SealError
from kernel.egress import REFUSED_MESSAGE, EgressRefused, address_pick
from kernel.local_roots import OutsideLocalRoots, local_directory_resolve
from kernel.sources import SourceNameInvalid, git_base_check
from kernel.tenancy import Actor


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


def _s3(location: StorageLocation) -> ConnectionCheck:
    store = bucket_settings_store(location)  # short timeouts, the guarded connect
    prefix = location.prefix.strip("/")
    with store.translate_errors("list"):
        store.client.list_objects_v2(
            Bucket=location.bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1
        )
    with store.translate_errors("read versioning"):
        versioning = store.client.get_bucket_versioning(Bucket=location.bucket)
    status = versioning.get("Status") or "not enabled"
    return ConnectionCheck(
        True,
        f"Connected to bucket {location.bucket} with the location's credentials and listed "
        f"{location.display_uri}; versioning is {status.lower()}.",
    )


def _local(location: StorageLocation) -> ConnectionCheck:
    directory = local_directory(location)  # inside the organization's folder of a root
    if not directory.is_dir():
        return ConnectionCheck(False, f"The directory {directory} does not exist yet.")
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        return ConnectionCheck(False, f"The server may not read and write {directory}.")
    return ConnectionCheck(
        True, f"The directory {directory} lies inside the allowed roots and is writable."
    )


def _git(location: StorageLocation) -> ConnectionCheck:
    scheme, host, _port = git_base_check(location.endpoint_url)
    if scheme == "file":
        path = urlsplit(location.endpoint_url).path
        local_directory_resolve(
            path, roots=settings.AGENCYOPS_LOCAL_ROOTS, slug=location.organization.slug
        )
        return ConnectionCheck(True, f"The repositories' folder {path} lies in the allowed roots.")
    address = address_pick(host)
    credentials = "with stored credentials" if location.has_credentials else "without credentials"
    return ConnectionCheck(
        True,
        f"{host} resolves to an address the egress policy allows ({address}); each dataset's "
        f"repository is fetched from there {credentials} when it is backed up.",
    )


def _database(location: StorageLocation) -> ConnectionCheck:
    server = database_server(location)  # the pinned address and the sealed credentials
    if location.kind == LocationKind.POSTGRES:
        version = postgres.postgres_server_version(server)
    else:
        version = mysql.mysql_server_version(server)
    return ConnectionCheck(
        True, f"Signed in to {location.get_kind_display()} {version} with the stored user."
    )


def location_connection_test(*, actor: Actor, location: StorageLocation) -> ConnectionCheck:
    """Reach the location as a backup would and report the outcome (owners and admins). Never
    raises for what the far side does: a refusal is a failed check with its reason."""
    actor.require_admin("test storage locations")
    try:
        if location.kind == LocationKind.S3:
            return _s3(location)
        if location.kind == LocationKind.LOCAL:
            return _local(location)
        if location.kind == LocationKind.GIT:
            return _git(location)
        if location.kind in (LocationKind.POSTGRES, LocationKind.MYSQL):
            return _database(location)
    except (EndpointUnreachable, IncompleteBody) as exc:
        if REFUSED in str(exc):
            return ConnectionCheck(False, REFUSED_MESSAGE)
        return ConnectionCheck(False, f"Not reachable: {NOT_REACHABLE}")
    except StoreNotFound:
        return ConnectionCheck(False, f"The bucket {location.bucket} does not exist there.")
    except AccessDenied as exc:
        return ConnectionCheck(False, f"Refused: {exc}")
    except (StorageError, SourceError, OutsideLocalRoots, SourceNameInvalid) as exc:
        return ConnectionCheck(False, str(exc) or type(exc).__name__)
    except EgressRefused:
        return ConnectionCheck(False, REFUSED_MESSAGE)
    except socket.gaierror:
        return ConnectionCheck(False, "The host name does not resolve.")
    except SealError:
        return ConnectionCheck(
            False, "The stored credentials cannot be opened any more; enter them again."
        )
    except ValueError as exc:  # boto3 refuses the endpoint URL or region before sending
        return ConnectionCheck(False, f"The endpoint or region is not valid: {exc}")
    return ConnectionCheck(
        True, "Nothing to connect to: a SaaS tool's exports are uploaded on the dataset's page."
    )
