"""Object-store interface (`ObjectStore`) and its S3 and local-directory implementations."""

from backups.storage.base import (
    DELETE_BATCH_SIZE,
    NULL_VERSION,
    DeleteError,
    DeleteResult,
    ObjectInfo,
    ObjectStore,
    ObjectVersion,
    Retention,
    join_key,
    read_full,
    validate_key,
)
from backups.storage.errors import (
    AccessDenied,
    CredentialsError,
    EndpointUnreachable,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StoreNotFound,
)
from backups.storage.local import LocalObjectStore
from backups.storage.s3 import S3ObjectStore

__all__ = [
    "DELETE_BATCH_SIZE",
    "NULL_VERSION",
    "AccessDenied",
    "CredentialsError",
    "DeleteError",
    "DeleteResult",
    "EndpointUnreachable",
    "InvalidKey",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectVersion",
    "Retention",
    "S3ObjectStore",
    "StorageError",
    "StoreNotFound",
    "join_key",
    "read_full",
    "validate_key",
]
