"""Reading a bucket's protection settings from the storage service (see the package docstring
for the `PostureAudit.facts` keys)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import botocore.exceptions

from agencyops.crypto import SealError
from backups.models import PostureCheck
from backups.services.stores import bucket_settings_store
from backups.storage import S3ObjectStore, StorageError
from clients.models import StorageLocation

# Error codes that mean "this setting is not configured", not "the request failed".
_ABSENT: dict[str, frozenset[str]] = {
    PostureCheck.OBJECT_LOCK: frozenset({"ObjectLockConfigurationNotFoundError"}),
    PostureCheck.REPLICATION: frozenset({"ReplicationConfigurationNotFoundError"}),
    PostureCheck.LIFECYCLE: frozenset({"NoSuchLifecycleConfiguration"}),
    PostureCheck.ENCRYPTION: frozenset({"ServerSideEncryptionConfigurationNotFoundError"}),
    PostureCheck.PUBLIC_ACCESS_BLOCK: frozenset({"NoSuchPublicAccessBlockConfiguration"}),
    "policy": frozenset({"NoSuchBucketPolicy"}),
}
# S3-compatible services that lack an API answer with one of these.
_UNSUPPORTED = frozenset({"NotImplemented", "MethodNotAllowed", "UnsupportedOperation"})
_PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


class _Unsupported(StorageError):
    """The storage service does not implement this setting."""


@dataclass(frozen=True)
class _Reading:
    reachable: bool
    error: str
    facts: dict[str, Any]


def _jsonable(value: Any) -> Any:
    """boto3's answer as JSON (dates as ISO text)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _call(
    store: S3ObjectStore,
    what: str,
    method: Callable[..., Any],
    *,
    absent: frozenset[str] = frozenset(),
    bucket: str | None = None,
    **kwargs: Any,
) -> dict[str, Any] | None:
    """One bucket-settings call (on the store's bucket, or `bucket` through the same client):
    None when the setting is not configured; failures come out as StorageError with
    credentials scrubbed (`_Unsupported` when the service lacks the API)."""
    with store.translate_errors(what):
        try:
            response = method(Bucket=bucket or store.bucket, **kwargs)
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in absent:
                return None
            if code in _UNSUPPORTED:
                raise _Unsupported(
                    f"{what} of {store.describe()}: the storage service does not support it "
                    f"({code})"
                ) from None
            raise
    return cast(dict[str, Any], response)


def _object_lock(store: S3ObjectStore) -> dict[str, Any]:
    answer = _call(
        store,
        "read object lock",
        store.client.get_object_lock_configuration,
        absent=_ABSENT[PostureCheck.OBJECT_LOCK],
    )
    config = (answer or {}).get("ObjectLockConfiguration", {})
    retention = config.get("Rule", {}).get("DefaultRetention", {})
    return {
        "enabled": config.get("ObjectLockEnabled") == "Enabled",
        "mode": retention.get("Mode") or None,
        "days": retention.get("Days") or None,
        "years": retention.get("Years") or None,
    }


def _replication(store: S3ObjectStore) -> list[Any]:
    answer = _call(
        store,
        "read replication",
        store.client.get_bucket_replication,
        absent=_ABSENT[PostureCheck.REPLICATION],
    )
    rules = (answer or {}).get("ReplicationConfiguration", {}).get("Rules", [])
    return cast(list[Any], _jsonable(rules))


def _lifecycle(store: S3ObjectStore) -> list[Any]:
    answer = _call(
        store,
        "read lifecycle rules",
        store.client.get_bucket_lifecycle_configuration,
        absent=_ABSENT[PostureCheck.LIFECYCLE],
    )
    return cast(list[Any], _jsonable((answer or {}).get("Rules", [])))


def _encryption(store: S3ObjectStore) -> str | None:
    answer = _call(
        store,
        "read default encryption",
        store.client.get_bucket_encryption,
        absent=_ABSENT[PostureCheck.ENCRYPTION],
    )
    rules = (answer or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    for rule in rules:
        algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        if algorithm:
            return str(algorithm)
    return None


def _public_access_block(store: S3ObjectStore) -> dict[str, bool] | None:
    answer = _call(
        store,
        "read public access block",
        store.client.get_public_access_block,
        absent=_ABSENT[PostureCheck.PUBLIC_ACCESS_BLOCK],
    )
    if answer is None:
        return None
    config = answer.get("PublicAccessBlockConfiguration", {})
    return {flag: bool(config.get(flag)) for flag in _PUBLIC_ACCESS_FLAGS}


def _logging(store: S3ObjectStore) -> dict[str, str] | None:
    answer = _call(store, "read access logging", store.client.get_bucket_logging)
    enabled = (answer or {}).get("LoggingEnabled")
    if not enabled:
        return None
    return {
        "target_bucket": str(enabled.get("TargetBucket", "")),
        "target_prefix": str(enabled.get("TargetPrefix", "")),
    }


_READERS: tuple[tuple[str, Callable[[S3ObjectStore], Any]], ...] = (
    (PostureCheck.OBJECT_LOCK, _object_lock),
    (PostureCheck.REPLICATION, _replication),
    (PostureCheck.LIFECYCLE, _lifecycle),
    (PostureCheck.ENCRYPTION, _encryption),
    (PostureCheck.PUBLIC_ACCESS_BLOCK, _public_access_block),
    (PostureCheck.LOGGING, _logging),
)


def _read(location: StorageLocation) -> _Reading:
    """Every setting the audit checks. Versioning is read first: if that fails the bucket counts
    as unreachable and nothing else is asked. A later setting that cannot be read is recorded
    under facts["errors"] and becomes a finding of its own; it never stops the audit."""
    try:
        store = bucket_settings_store(location)
        versioning = _call(store, "read versioning", store.client.get_bucket_versioning) or {}
    except (StorageError, ValueError, SealError) as exc:
        # ValueError: boto3 refuses the endpoint URL or region before sending anything;
        # SealError: the stored credentials do not open under the current master key.
        return _Reading(reachable=False, error=str(exc) or type(exc).__name__, facts={})
    facts: dict[str, Any] = {
        PostureCheck.VERSIONING.value: versioning.get("Status") or "Disabled",
        PostureCheck.MFA_DELETE.value: versioning.get("MFADelete") or "Disabled",
    }
    errors: dict[str, str] = {}
    for check, reader in _READERS:
        try:
            facts[check] = reader(store)
        except StorageError as exc:
            facts[check] = None
            errors[check] = str(exc)
    if errors:
        facts["errors"] = errors
    return _Reading(reachable=True, error="", facts=facts)
