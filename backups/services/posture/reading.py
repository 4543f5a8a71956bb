"""Reading a bucket's protection settings from the storage service (see the package docstring
for the `PostureAudit.facts` keys).

The endpoint is a tenant's input and "audit now" answers at once, so the audit must not be a
port scanner: an endpoint that refuses, does not answer, closes, times out, fails TLS or answers
something that is not an S3 service is recorded with one reason (NOT_REACHABLE), never with
the kind of failure, the remote's status or its body. Errors that an S3 service itself answered
(AccessDenied, NoSuchBucket, InvalidAccessKeyId…) are kept: an admin needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import botocore.exceptions
from botocore.parsers import ResponseParserError

from backups.models import PostureCheck
from backups.services.stores import bucket_settings_store
from backups.storage import EndpointUnreachable, S3ObjectStore, StorageError
from backups.storage.errors import IncompleteBody
from clients.models import StorageLocation
from kernel.crypto import SealError

# The one reason recorded for every endpoint where no S3 service answered.
NOT_REACHABLE = "endpoint unreachable: no S3 service answered there."

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


class _NotS3(StorageError):
    """What answered (if anything did) is not an S3 service."""

    def __init__(self) -> None:
        super().__init__(NOT_REACHABLE)


# The network and protocol failures of botocore (refused, unanswered, reset, timed out, TLS,
# an unparsable answer): from the first question, they all mean no S3 service answered.
_TRANSPORT = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    ResponseParserError,
)


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


def _versioning(store: S3ObjectStore) -> dict[str, Any]:
    """The first question, which also tells whether an S3 service answers at all: its answer
    is an XML document about versioning (`<VersioningConfiguration …>`, or moto's
    `<GetBucketVersioningResponse …>`), its errors carry an S3 error code. Anything else (an
    HTML page, an empty 200, a bare status, a dropped connection) is _NotS3."""
    documents: list[bool] = []

    def keep(response_dict: Mapping[str, Any], **_: Any) -> None:
        body = response_dict.get("body")
        documents.append(
            isinstance(body, bytes) and body.lstrip()[:1] == b"<" and b"Versioning" in body
        )

    events = store.client.meta.events
    events.register("before-parse.s3.GetBucketVersioning", keep)
    try:
        with store.translate_errors("read versioning"):
            try:
                response = store.client.get_bucket_versioning(Bucket=store.bucket)
            except botocore.exceptions.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if not code or code.isdigit():
                    raise _NotS3() from None  # a status without an S3 error document
                if code in _UNSUPPORTED:
                    raise _Unsupported(
                        f"read versioning of {store.describe()}: the storage service does not "
                        f"support it ({code})"
                    ) from None
                raise
            except _TRANSPORT:
                raise _NotS3() from None
    finally:
        events.unregister("before-parse.s3.GetBucketVersioning", keep)
    if not documents or not documents[-1]:
        raise _NotS3()
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
        versioning = _versioning(store)
    except (_NotS3, EndpointUnreachable, IncompleteBody):
        return _Reading(reachable=False, error=NOT_REACHABLE, facts={})
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
