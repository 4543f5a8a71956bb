"""Storage exceptions: one vocabulary for every backend, so callers never catch botocore types.

Names follow the project's exception vocabulary (STYLE.md: `LegalHoldActive`,
`SelfApprovalForbidden`): they say what happened, without an "Error" suffix.

Messages name the store, the operation and the key, never credentials: they end up in run logs,
alerts and API error bodies.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class for every failure of an object store."""


class ObjectNotFound(StorageError):
    """The key (or the requested version) does not exist."""


class StoreNotFound(StorageError):
    """The bucket, or the local root directory, does not exist."""


class AccessDenied(StorageError):
    """The store refused the request (policy, bucket ownership, permissions)."""


class CredentialsError(AccessDenied):
    """Credentials are missing, malformed, unknown or their signature does not match."""


class EndpointUnreachable(StorageError):
    """The endpoint could not be reached or stopped answering (DNS, refused, timeout)."""


class IncompleteBody(StorageError):
    """A response body stopped before its announced length (reset, truncation, timeout)."""


class InvalidKey(StorageError):
    """A key is malformed or would escape the store's root ('..', absolute, NUL, empty part)."""


class ObjectArchived(StorageError):
    """The object sits in an archive storage class (GLACIER, DEEP_ARCHIVE): it must be
    retrieved (S3 RestoreObject) before it can be read."""


class ArchiveRetrievalPending(StorageError):
    """Archived objects a read needs were not retrieved within the time allowed; the message
    says how many are still archived."""
