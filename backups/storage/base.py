"""The object-store interface every backend implements, and the value types it returns.

Everything above this package (the backup engine, deletion, posture checks) talks to
`ObjectStore` only, so an S3 bucket and a local directory are interchangeable.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from backups.storage.errors import InvalidKey

# Version id S3 reports for objects written while versioning was off; local files use it too.
NULL_VERSION = "null"

# S3 DeleteObjects accepts at most this many keys per request.
DELETE_BATCH_SIZE = 1000
# Storage classes whose objects cannot be read until they are retrieved (S3 RestoreObject):
# a GET answers InvalidObjectState. The other classes (STANDARD_IA, GLACIER_IR, ...) read at once.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(frozen=True, slots=True)
class Retention:
    """Object Lock retention for every object a store writes: S3's mode and a period in days
    counted from the write."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One current object. `mtime` is an aware UTC datetime; `etag` changes when content does."""

    key: str
    size: int
    mtime: datetime
    etag: str
    # S3 names it in listings and heads (STANDARD when it says nothing); local files have none.
    storage_class: str = "STANDARD"

    @property
    def archived(self) -> bool:
        """Whether the object's class needs a retrieval before it can be read."""
        return self.storage_class in ARCHIVE_CLASSES


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """An object's storage class and where its retrieval stands, as S3's HEAD reports them:
    `restore` is "none" (never asked, or the retrieved copy expired), "ongoing" or "done"."""

    key: str
    storage_class: str
    restore: Literal["none", "ongoing", "done"]

    @property
    def archived(self) -> bool:
        return self.storage_class in ARCHIVE_CLASSES

    @property
    def readable(self) -> bool:
        return not self.archived or self.restore == "done"


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version (or delete marker) of a key, as needed to delete every copy of it."""

    key: str
    version_id: str
    is_delete_marker: bool
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class DeleteError:
    key: str
    version_id: str | None
    code: str
    message: str


@dataclass(slots=True)
class DeleteResult:
    """What a batched delete removed and what it could not remove (never raised per key)."""

    deleted: list[tuple[str, str | None]] = field(default_factory=list)
    errors: list[DeleteError] = field(default_factory=list)

    def extend(self, other: DeleteResult) -> None:
        self.deleted.extend(other.deleted)
        self.errors.extend(other.errors)


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of '/'-separated keys holding immutable byte objects."""

    def describe(self) -> str:
        """A human-readable name for messages (bucket and endpoint, or directory); no secrets."""
        ...

    def put(
        self,
        key: str,
        data: bytes | bytearray | BinaryIO,
        *,
        cold: bool = False,
        retain: bool = True,
    ) -> None:
        """Store `data` under `key` atomically: readers see the old object or the whole new one.

        A file-like `data` is read until EOF and streamed (multipart on S3), so large objects
        never sit in memory whole; if reading it raises, nothing is stored.

        `cold` marks bulk content a restore reads rarely (a repository's data packs): a store
        configured with a cold storage class writes it there; everything else stays in the
        default class, because backups read it on every run. `retain=False` marks a short-lived
        coordination object (a prune lock) that the store's retention must not keep.
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the whole object; raises ObjectNotFound when absent. For small objects."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes of the object from `offset` (fewer only at its end); ObjectNotFound
        when absent. How a pack's blobs are read without fetching the whole pack."""
        ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the object for streaming reads; raises ObjectNotFound when absent."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Describe the object, or return None when it does not exist."""
        ...

    def list(self, prefix: str = "", *, skipped: list[str] | None = None) -> Iterator[ObjectInfo]:
        """Yield every current object whose key starts with `prefix`, in key order.

        Only data is listed, and nothing is followed: a backend that meets entries that are not
        objects of its own (a local directory's symbolic links, FIFOs, sockets, devices)
        neither yields nor reads them, and appends their keys to `skipped` when a list is
        given, so a caller can name what it did not get instead of dropping it silently. The
        list is complete once the iterator is exhausted. S3 has no such entries.
        """
        ...

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Yield every version and delete marker whose key starts with `prefix`."""
        ...

    def delete_versions(self, items: Iterable[tuple[str, str | None]]) -> DeleteResult:
        """Delete the given (key, version_id) pairs; a None version deletes the current object.

        Deleting something already absent counts as deleted (idempotent, for resumable runs).
        """
        ...


def validate_key(key: str) -> str:
    """Refuse keys that could escape a root or alias another key: the rule every backend shares.

    A key is relative, '/'-separated, with no empty, '.' or '..' part and no NUL byte.
    """
    if not key:
        raise InvalidKey("empty key")
    if "\x00" in key:
        raise InvalidKey(f"key contains a NUL byte: {key!r}")
    if key.startswith("/"):
        raise InvalidKey(f"key must be relative: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"key has an empty, '.' or '..' part: {key!r}")
    return key


def join_key(prefix: str, name: str) -> str:
    """Join a prefix (with or without trailing '/') and a relative name with exactly one '/'."""
    prefix = prefix.strip("/")
    name = name.lstrip("/")
    if not prefix:
        return name
    if not name:
        return prefix + "/"
    return f"{prefix}/{name}"


def readinto_of(stream: object) -> Callable[[memoryview], int] | None:
    """The stream's own readinto, or None when it only has read().

    io.RawIOBase declares a readinto that subclasses overriding just read() leave
    unimplemented, so its presence alone proves nothing.
    """
    method = getattr(type(stream), "readinto", None)
    if method is None or method is io.RawIOBase.readinto:
        return None
    bound: Callable[[memoryview], int] = getattr(stream, "readinto")  # noqa: B009
    return bound


def read_full(stream: BinaryIO, size: int) -> bytes:
    """Read exactly `size` bytes unless EOF comes first (socket reads may return fewer)."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    pieces = [data]
    remaining = size - len(data)
    while remaining:
        more = stream.read(remaining)
        if not more:
            break
        pieces.append(more)
        remaining -= len(more)
    return b"".join(pieces)
