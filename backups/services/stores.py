"""From inventory rows to object stores: the only place credentials are opened.

Every store built here acts for a tenant, so the operator's limits are applied again at the
moment of use (whatever was checked when the location was saved): a local directory must still
resolve inside the organization's folder of a local root, an S3 location without stored
credentials never falls back on the server's own unless the operator allows it, and an S3
store's sockets open only where the egress policy allows (kernel.egress: no loopback,
private, link-local or metadata address unless the operator lists it), judged on the address
actually connected to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from backups.models import PolicyTarget, StorageClass
from backups.storage import (
    AccessDenied,
    CredentialsError,
    LocalObjectStore,
    ObjectStore,
    Retention,
    S3ObjectStore,
    StorageError,
)
from clients.models import Dataset, LocationKind, StorageLocation
from clients.services import location_credentials
from kernel.egress import guarded_connect
from kernel.local_roots import OutsideLocalRoots, local_directory_resolve

# One connection per engine thread, plus a little headroom for listings.
POOL_CONNECTIONS = 20


def local_directory(location: StorageLocation) -> Path:
    """The location's real directory, if it still lies inside the organization's folder of a
    local root; AccessDenied otherwise (the roots changed, or a symlink appeared on the way)."""
    try:
        return local_directory_resolve(
            location.prefix,
            roots=settings.AGENCYOPS_LOCAL_ROOTS,
            slug=location.organization.slug,
        )
    except OutsideLocalRoots as exc:
        raise AccessDenied(f"{location.name}: {exc}") from None


def _credentials(location: StorageLocation) -> dict[str, str]:
    """The stored credentials; without any, the server's own only where the operator allows
    it (then boto3's usual chain: environment, configuration, instance role)."""
    credentials = location_credentials(location)
    if credentials is None and not settings.AGENCYOPS_ALLOW_AMBIENT_CREDENTIALS:
        raise CredentialsError(
            f"{location.name} has no stored credentials; give it its own access key (the "
            "server's own credentials are not lent to storage locations)."
        )
    return credentials or {}


def store_for_location(
    location: StorageLocation,
    *,
    create: bool = False,
    retention: Retention | None = None,
    cold_storage_class: str | None = None,
) -> ObjectStore:
    """An ObjectStore over the location's bucket or directory (keys relative to its prefix for
    local directories; S3 keys include the location prefix, see `location_key`). `retention`
    and `cold_storage_class` apply to what an S3 store writes (see `target_store`)."""
    if location.kind == LocationKind.LOCAL:
        return LocalObjectStore(local_directory(location), create=create)
    if location.kind != LocationKind.S3:
        # Read by git or a database dump (backups.services.sources), never as objects.
        raise StorageError(f"{location.name} is a {location.get_kind_display()}, not a store")
    credentials = _credentials(location)
    return S3ObjectStore(
        bucket=location.bucket,
        endpoint_url=location.endpoint_url or None,
        region=location.region or None,
        access_key_id=credentials.get("access_key_id"),
        secret_access_key=credentials.get("secret_access_key"),
        max_pool_connections=POOL_CONNECTIONS,
        connect=guarded_connect,
        retention=retention,
        cold_storage_class=cold_storage_class,
    )


def policy_target(dataset: Dataset, location: StorageLocation) -> PolicyTarget | None:
    """The dataset's policy's target row for the location (None once it is no target)."""
    return (
        PolicyTarget.objects.filter(policy__protections__dataset=dataset, location=location)
        .select_related("policy")
        .first()
    )


def target_retention(target: PolicyTarget | None) -> Retention | None:
    if target is None or not target.locked or not target.object_lock_days:
        return None
    if target.object_lock_mode == "COMPLIANCE":
        return Retention(mode="COMPLIANCE", days=target.object_lock_days)
    return Retention(mode="GOVERNANCE", days=target.object_lock_days)


def target_store(
    location: StorageLocation, dataset: Dataset, *, create: bool = False
) -> ObjectStore:
    """The store a dataset's repository on one of its targets is written through: every
    object retained as the target asks (Object Lock), file content in the policy's class."""
    target = policy_target(dataset, location)
    storage_class = target.policy.storage_class if target is not None else StorageClass.STANDARD
    return store_for_location(
        location,
        create=create,
        retention=target_retention(target),
        cold_storage_class=None if storage_class == StorageClass.STANDARD else storage_class,
    )


def bucket_settings_store(location: StorageLocation) -> S3ObjectStore:
    """The location's bucket for reading and changing its settings (posture audits and fixes):
    short timeouts and one retry, so an unreachable endpoint answers in seconds, not minutes."""
    if location.kind != LocationKind.S3:
        raise ValueError("only S3 locations have bucket settings")
    credentials = _credentials(location)
    return S3ObjectStore(
        bucket=location.bucket,
        endpoint_url=location.endpoint_url or None,
        region=location.region or None,
        access_key_id=credentials.get("access_key_id"),
        secret_access_key=credentials.get("secret_access_key"),
        max_pool_connections=2,
        max_attempts=2,
        connect_timeout=3.0,
        read_timeout=10.0,
        connect=guarded_connect,
    )


class VersionLocks:
    """Why storage refused to delete a version: its object-lock retention date or a legal hold
    on it. The ObjectStore interface has no call for it; a location's bucket-settings store
    does (its own credentials, the egress policy). One store per location, opened on first use."""

    def __init__(self) -> None:
        self._stores: dict[int, S3ObjectStore] = {}

    def retained_until(
        self, location: StorageLocation, key: str, version_id: str | None
    ) -> str | None:
        """The lock's end (ISO, UTC) or "storage legal hold"; None when nothing (readable)
        keeps the version: not S3, no version, no lock in force, or the head failed."""
        if location.kind != LocationKind.S3 or not version_id:
            return None
        if location.pk not in self._stores:
            self._stores[location.pk] = bucket_settings_store(location)
        store = self._stores[location.pk]
        try:
            with store.translate_errors("head", key):
                head = store.client.head_object(
                    Bucket=location.bucket, Key=key, VersionId=version_id
                )
        except StorageError:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        if isinstance(until, datetime) and until > timezone.now():
            return until.astimezone(UTC).isoformat()
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return "storage legal hold"
        return None


def location_key(location: StorageLocation, *parts: str) -> str:
    """A key under the location: S3 locations nest under their prefix, directories are roots."""
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    if location.kind == LocationKind.S3 and location.prefix.strip("/"):
        cleaned.insert(0, location.prefix.strip("/"))
    return "/".join(cleaned)


def repository_base(location: StorageLocation, dataset: Dataset) -> str:
    """<prefix>/<org>/<client>/<dataset>: public ids, so renames never move a repository."""
    return location_key(
        location,
        str(dataset.organization.public_id),
        str(dataset.client.public_id),
        str(dataset.public_id),
    )


def dataset_source(dataset: Dataset) -> tuple[ObjectStore, str]:
    """The primary copy: the dataset's location and the prefix of its path there."""
    return store_for_location(dataset.location), location_key(dataset.location, dataset.path)
