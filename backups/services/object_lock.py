"""Object Lock on backup targets: whether a target keeps what it is given, how the target's copy
of the data key is wrapped there, and how a new snapshot extends the retention of what it needs.

A locked target keeps every version of every object for its retention, deletions included. So
the copy of the data key it holds must not open with the master key alone: it is wrapped by the
dataset's lock-wrapping key, which lives only in the database (and its self-backups) and is
destroyed with the data key. A deletion then leaves, on the lock, ciphertext whose every key
is gone.

Retention is counted from each write. A later snapshot may reuse packs written long ago, so
after a backup the whole repository's retention is moved to now + N days whenever less than
`EXTEND_BEFORE` of the period is left on the last mark: every snapshot is retained at least
0.9 N days after it is taken, and an extension costs one request per object every 0.1 N
days, not one per object per run.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

import botocore.exceptions
from django.db import transaction
from django.utils import timezone

from backups import engine
from backups.models import DatasetProtection, Snapshot
from backups.services.policies import dataset_key_context, protection_get
from backups.services.stores import bucket_settings_store
from backups.storage import ObjectStore, S3ObjectStore, StorageError
from clients.models import Dataset, StorageLocation
from kernel.crypto import master_key

logger = logging.getLogger(__name__)

# Extend once the last mark is closer than this fraction of the period.
EXTEND_BEFORE = 0.9
_LOCK_CONTEXT = b"lock-wrapping-key:"
_NO_LOCK = "ObjectLockConfigurationNotFoundError"


class LockUnavailable(StorageError):
    """A policy target asks for Object Lock retention on a bucket that cannot hold locks."""


def bucket_lock_enabled(store: ObjectStore) -> bool | None:
    """Whether the store's bucket has Object Lock on; None when it cannot be told (no right
    to read the setting, or a service without the API). A directory has none."""
    if not isinstance(store, S3ObjectStore):
        return False
    try:
        with store.translate_errors("read object lock"):
            try:
                answer = store.client.get_object_lock_configuration(Bucket=store.bucket)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == _NO_LOCK:
                    return False
                raise
    except StorageError as exc:
        logger.info("object lock of %s unknown: %s", store.describe(), exc)
        return None
    config = answer.get("ObjectLockConfiguration") or {}
    return config.get("ObjectLockEnabled") == "Enabled"


def target_locked(store: ObjectStore) -> bool:
    """Whether what the target is given may outlive a deletion: its policy asks for retention,
    or the bucket has Object Lock (a default retention applies to every write). A bucket whose
    setting cannot be read counts as locked: the safe side for the key's copy.

    Raises LockUnavailable when the policy asks for retention the bucket cannot give."""
    enabled = bucket_lock_enabled(store)
    retention = store.retention if isinstance(store, S3ObjectStore) else None
    if retention is not None and enabled is False:
        raise LockUnavailable(
            f"The policy asks for Object Lock retention ({retention.mode.lower()}, "
            f"{retention.days} days) on {store.describe()}, whose bucket has Object Lock off. "
            "Object Lock is chosen when a bucket is created: back up to a bucket created with "
            "it, or remove the retention from the policy's target."
        )
    return retention is not None or enabled is not False


def _lock_wrapping_key(dataset: Dataset) -> bytes:
    """The dataset's lock-wrapping key, made on first use. Never log it."""
    context = _LOCK_CONTEXT + dataset.public_id.bytes
    with transaction.atomic():
        protection = DatasetProtection.objects.select_for_update().get(
            pk=protection_get(dataset).pk
        )
        if not protection.wrapped_key:
            raise engine.KeyUnwrapFailed("the dataset's key was destroyed")
        if protection.lock_wrapping_key:
            return engine.unwrap_data_key(
                master_key(), bytes(protection.lock_wrapping_key), context=context
            )
        key = engine.generate_data_key()
        protection.lock_wrapping_key = engine.wrap_data_key(master_key(), key, context=context)
        protection.save(update_fields=["lock_wrapping_key"])
        return key


def lock_wrapping_key_if_any(dataset: Dataset) -> bytes | None:
    """The lock-wrapping key while the database still holds it (deletion's proof asks)."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    if protection is None or not protection.lock_wrapping_key:
        return None
    return engine.unwrap_data_key(
        master_key(),
        bytes(protection.lock_wrapping_key),
        context=_LOCK_CONTEXT + dataset.public_id.bytes,
    )


def repository_key_store(
    *, store: ObjectStore, base: str, dataset: Dataset, data_key: bytes
) -> bool:
    """Write (or check) the target's copy of the data key, wrapped as the target needs; returns
    whether the target is locked. A copy a target held before it was locked (wrapped by the
    master key) is wrapped again; its earlier versions are deleted where storage lets us, and
    one a lock keeps makes the deletion's proof fail, as it should."""
    locked = target_locked(store)
    context = dataset_key_context(dataset)
    if not locked:
        engine.init_repository(store, base, master_key(), data_key, context=context)
        return False
    rewrapped = engine.init_repository(
        store,
        base,
        _lock_wrapping_key(dataset),
        data_key,
        context=context,
        earlier_keys=(master_key(),),
    )
    if rewrapped:
        _earlier_key_versions_delete(store, base)
    return True


def _earlier_key_versions_delete(store: ObjectStore, base: str) -> None:
    key = engine.key_object(base)
    versions = [v for v in store.list_versions(key) if v.key == key]
    older = [(v.key, v.version_id) for v in versions[1:] if not v.is_delete_marker]
    if older:
        result = store.delete_versions(older)
        for error in result.errors:
            logger.warning("earlier key version %s kept: %s", error.version_id, error.code)


def retention_extend(
    *, store: ObjectStore, base: str, dataset: Dataset, location: StorageLocation, now: datetime
) -> datetime | None:
    """After a backup to a target with retention: the mark the new snapshot records (every
    object it needs is retained at least until then), extending the repository first when the
    last mark is too close. None for a target without retention."""
    retention = store.retention if isinstance(store, S3ObjectStore) else None
    if retention is None or not isinstance(store, S3ObjectStore):
        return None
    period = timedelta(days=retention.days)
    last = (
        Snapshot.objects.filter(dataset=dataset, location=location, retained_until__isnull=False)
        .order_by("-taken_at", "-id")
        .values_list("retained_until", flat=True)
        .first()
    )
    if last is not None and last >= now + period * EXTEND_BEFORE:
        return min(last, now + period)
    # Counted from now, after the run's writes: a mark never shortens what they were given.
    until = max(now, timezone.now()) + period
    keys = [
        info.key
        for info in store.list(base.rstrip("/") + "/")
        if "/locks/" not in info.key[len(base) :]
    ]
    count = store.extend_retention(keys, until, retention.mode)
    logger.info("retention of %d objects at %s extended to %s", count, base, until.isoformat())
    return until


def _wrapping_keys(dataset: Dataset) -> list[bytes]:
    keys = [master_key()]
    lock_key = lock_wrapping_key_if_any(dataset)
    if lock_key is not None:
        keys.append(lock_key)
    return keys


def _opened(sealed: bytes, wrappings: list[bytes], context: bytes) -> bytes | None:
    for wrapping in wrappings:
        try:
            return engine.unwrap_data_key(wrapping, sealed, context=context)
        except engine.KeyUnwrapFailed:
            continue
    return None


def repository_keys_left(
    *,
    location: StorageLocation,
    store: ObjectStore,
    base: str,
    dataset: Dataset,
    retained_key_versions: list[str],
) -> list[bytes]:
    """The data keys anything left still opens, for a deletion's proof: the database's copy,
    the target's current `key` and every version of it a lock retains, each tried with the
    master key and with the lock-wrapping key if the database still has it. Empty is the
    proof; a retained version that cannot be read raises (StorageError): nothing is proven."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    found: list[bytes] = []
    if protection is not None and protection.wrapped_key:
        found.append(
            engine.unwrap_data_key(
                master_key(), bytes(protection.wrapped_key), context=dataset_key_context(dataset)
            )
        )
    wrappings = _wrapping_keys(dataset)
    context = dataset_key_context(dataset)
    sealed_copies: list[bytes] = []
    # Gone (or under a delete marker) is fine: the retained versions are asked below.
    with contextlib.suppress(StorageError):
        sealed_copies.append(store.get(engine.key_object(base)))
    if retained_key_versions:
        settings_store = bucket_settings_store(location)
        for version_id in retained_key_versions:
            with settings_store.translate_errors("get", engine.key_object(base)):
                answer = settings_store.client.get_object(
                    Bucket=location.bucket, Key=engine.key_object(base), VersionId=version_id
                )
            sealed_copies.append(answer["Body"].read())
    for sealed in sealed_copies:
        opened = _opened(sealed, wrappings, context)
        if opened is not None:
            found.append(opened)
    return found
