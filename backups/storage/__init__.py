"""Object-store interface (`ObjectStore`) and its S3 and local-directory implementations."""

from backups.storage.base import (
    ARCHIVE_CLASSES,
    DELETE_BATCH_SIZE,
    NULL_VERSION,
    ArchiveState,
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
    ArchiveRetrievalPending,
    CredentialsError,
    EndpointUnreachable,
    InvalidKey,
    ObjectArchived,
    ObjectNotFound,
    StorageError,
    StoreNotFound,
)
from backups.storage.local import LocalObjectStore
from backups.storage.s3 import S3ObjectStore

__all__ = [
    "ARCHIVE_CLASSES",
    "DELETE_BATCH_SIZE",
    "NULL_VERSION",
    "AccessDenied",
    "ArchiveRetrievalPending",
    "ArchiveState",
    "CredentialsError",
    "DeleteError",
    "DeleteResult",
    "EndpointUnreachable",
    "InvalidKey",
    "LocalObjectStore",
    "ObjectArchived",
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
