"""Response bodies of S3 GETs: errors translated like everything else, a body that resumes a
broken read with a Range request, and the fast path's body read straight from the socket."""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3.exceptions

from backups.storage.errors import (
    AccessDenied,
    EndpointUnreachable,
    IncompleteBody,
    InvalidKey,
    ObjectArchived,
    ObjectNotFound,
    StorageError,
    StoreNotFound,
)

if TYPE_CHECKING:
    from backups.storage.s3.store import S3ObjectStore

MIB = 1024 * 1024


class TranslatingReader:
    """A response body whose read errors come out as StorageError like everything else."""

    def __init__(self, body: Any, store: S3ObjectStore, key: str) -> None:
        self._body = body
        self._store = store
        self._key = key

    def read(self, size: int = -1) -> bytes:
        with self._store.translate_errors("read", self._key):
            data: bytes = self._body.read(None if size < 0 else size)
            return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        with self._store.translate_errors("read", self._key):
            n: int = self._body.readinto(buffer)
            return n

    def close(self) -> None:
        self._body.close()


def _read_by_readinto(readinto: Callable[[memoryview], int], size: int, remaining: int) -> bytes:
    """`read(size)` over `readinto`: up to `size` bytes (all of them when `size` < 0; `remaining`,
    when known, sizes that read in one buffer)."""
    if size < 0:
        if remaining < 0:
            pieces = []
            while piece := _read_by_readinto(readinto, MIB, -1):
                pieces.append(piece)
            return b"".join(pieces)
        size = remaining
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = readinto(view[got:])
        if not n:
            break
        got += n
    del view
    del buffer[got:]
    return bytes(buffer)


# Failures that say nothing about the rest of the object: reading again from where the body
# broke off can succeed. A missing object, a refusal, a bad key or an archived object will not
# change on retry.
_FINAL_READ_ERRORS = (ObjectNotFound, StoreNotFound, AccessDenied, InvalidKey, ObjectArchived)
_RESUME_ATTEMPTS = 4
_RESUME_BACKOFF_SECONDS = 0.2


class ResumingReader:
    """An object's body that survives dropped connections and truncated responses.

    Each read goes to the current response; when it fails midway (reset, truncation, timeout),
    the reader closes it and asks for the remaining bytes of the same version with a Range
    request, up to a few times with growing pauses. Callers see one continuous body, or, once
    the attempts are spent, the last error.
    """

    def __init__(
        self, store: S3ObjectStore, key: str, start: int = 0, end: int | None = None
    ) -> None:
        """The whole object, or (ranged reads of a pack) the bytes from `start` to `end`."""
        self._store = store
        self._key = key
        self._done = start
        self._end = end
        self._failures = 0
        self._body, self._length, self._etag = store._open_from(key, start, None, end)

    def _resume(self, error: StorageError) -> None:
        self._failures += 1
        if (
            isinstance(error, _FINAL_READ_ERRORS)
            or self._failures > _RESUME_ATTEMPTS
            or self._length < 0  # without a length a short body cannot be told from the end
        ):
            raise error
        with contextlib.suppress(Exception):
            self._body.close()
        time.sleep(_RESUME_BACKOFF_SECONDS * self._failures)
        self._body, _, etag = self._store._open_from(self._key, self._done, self._etag, self._end)
        if self._etag and etag and etag != self._etag:
            raise StorageError(
                f"read of {self._key!r} in {self._store.describe()} failed: "
                "the object changed while it was read"
            )

    def readinto(self, buffer: bytearray | memoryview) -> int:
        while True:
            try:
                n: int = self._body.readinto(buffer)
            except StorageError as exc:
                self._resume(exc)
                continue
            if not n and len(buffer) and 0 <= self._length != self._done:
                try:
                    raise IncompleteBody(
                        f"read of {self._key!r} in {self._store.describe()} failed: "
                        f"body ended after {self._done} of {self._length} bytes"
                    )
                except IncompleteBody as exc:
                    self._resume(exc)
                    continue
            self._done += n
            return n

    def read(self, size: int = -1) -> bytes:
        return _read_by_readinto(self.readinto, size, -1)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()


class DirectBody:
    """The body of a GET sent on the fast path: read straight from the socket.

    http.client's readinto fills the caller's buffer directly (urllib3 and botocore would copy
    through a new bytes object per read), and enforces the Content-Length.
    """

    def __init__(self, response: Any, store: S3ObjectStore, key: str) -> None:
        self._raw = response.raw
        fp = getattr(self._raw, "_fp", None)
        self._fp = fp if isinstance(fp, http.client.HTTPResponse) else None
        self._length = int(response.headers.get("content-length", -1))
        self.length = self._length
        self.etag: str | None = str(response.headers.get("etag", "")).strip('"') or None
        self._done = 0
        self._store = store
        self._key = key

    def readinto(self, buffer: bytearray | memoryview) -> int:
        try:
            source = self._fp if self._fp is not None else self._raw
            n = source.readinto(buffer)
        except (TimeoutError, ConnectionError) as exc:
            raise EndpointUnreachable(
                f"read of {self._key!r} in {self._store.describe()} failed: "
                f"endpoint unreachable ({type(exc).__name__})"
            ) from None
        except (http.client.HTTPException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise IncompleteBody(
                f"read of {self._key!r} in {self._store.describe()} failed: {type(exc).__name__}"
            ) from None
        self._done += n
        if not n and len(buffer) and 0 <= self._length != self._done:
            raise IncompleteBody(
                f"read of {self._key!r} in {self._store.describe()} failed: "
                f"body ended after {self._done} of {self._length} bytes"
            )
        return n

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._done if self._length >= 0 else -1
        return _read_by_readinto(self.readinto, size, remaining)

    def close(self) -> None:
        if 0 <= self._length == self._done:
            # Fully read: the connection can serve the next request.
            self._raw.release_conn()
        else:
            self._raw.close()
