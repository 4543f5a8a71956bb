"""Restore a snapshot into any object store, verifying every byte on the way.

One pool of workers restores whole files, largest first, so the pool works across files while
each file streams its chunks in order: a chunk's ciphertext arrives in pieces (read into
reused per-thread buffers), is decrypted piece by piece, hashed and handed to the destination's
`put` as a stream. Memory per worker is a few hundred KiB whatever the chunk size.

Nothing unverified becomes visible: a chunk's GCM tag is checked when its last piece arrives,
and the last piece of a file is released only after the file's size and sha256 match the
manifest, so a destination never receives a complete-looking file with wrong content (`put`
stores nothing when the stream it reads raises).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import BinaryIO, cast

from backups.engine.crypto import (
    CHUNK_HEADER_SIZE,
    TAG_SIZE,
    ChunkOpener,
    DatasetKeys,
    decrypt_chunk,
)
from backups.engine.errors import ChunkCorrupt, FileIntegrityError, UnsafePath
from backups.engine.manifest import FileEntry
from backups.engine.repository import _load_manifest, chunk_object
from backups.storage import InvalidKey, ObjectStore, join_key, validate_key
from backups.storage.base import readinto_of

DEFAULT_THREADS = 16
# Ciphertext read (and plaintext released) per step: big enough that per-call overhead is
# noise, small enough to stay in cache between socket, cipher, hash and file write.
_PIECE = 256 * 1024
# Files up to this size are fetched whole and decrypted in one call: fewer steps per file.
_WHOLE_FILE_MAX = _PIECE

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RestoreResult:
    manifest_id: str
    files_restored: int
    bytes_restored: int


def check_manifest_path(path: str) -> str:
    """Refuse a manifest path that could land outside the destination prefix.

    The rule: relative, '/'-separated, no empty/'.'/'..' part, no NUL. A manifest is
    authenticated, but a source bucket may legally hold keys such as 'a/../../etc/x'.
    """
    try:
        return validate_key(path)
    except InvalidKey as exc:
        raise UnsafePath(f"refusing to restore unsafe path {path!r}: {exc}") from None


def _selected(entries: tuple[FileEntry, ...], path_prefix: str) -> list[FileEntry]:
    prefix = path_prefix.strip("/")
    if not prefix:
        return list(entries)
    # A prefix names a file or a directory: 'docs' selects 'docs' and 'docs/…', not 'docs2'.
    return [e for e in entries if e.path == prefix or e.path.startswith(prefix + "/")]


def _readinto(stream: BinaryIO, view: memoryview) -> int:
    """Fill as much of `view` as one read gives; 0 at EOF. Streams without readinto work too."""
    readinto = readinto_of(stream)
    if readinto is not None:
        return int(readinto(view) or 0)
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def _read_exact(stream: BinaryIO, view: memoryview) -> int:
    """Fill `view` unless EOF comes first; returns how much was read."""
    got = 0
    while got < len(view):
        n = _readinto(stream, view[got:])
        if not n:
            break
        got += n
    return got


class _Buffers(threading.local):
    """Per-worker scratch space, reused for every chunk the worker restores."""

    def __init__(self) -> None:
        # Ciphertext: one piece plus the tag-sized tail held back until the next read.
        self.sealed = bytearray(_PIECE + TAG_SIZE)
        # Plaintext: two, so one piece can wait (unreleased) while the next is decrypted.
        # update_into wants room for a block beyond the input.
        self.plain = (bytearray(_PIECE + TAG_SIZE + 16), bytearray(_PIECE + TAG_SIZE + 16))


class _FileStream:
    """A file's verified plaintext as a stream (readinto/read), fed by a piece generator."""

    def __init__(self, pieces: Iterator[memoryview]) -> None:
        self._pieces = pieces
        self._current = memoryview(b"")

    def _next(self) -> bool:
        while not len(self._current):
            piece = next(self._pieces, None)
            if piece is None:
                return False
            self._current = piece
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if not self._next():
            return 0
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            parts = []
            while self._next():
                parts.append(bytes(self._current))
                self._current = memoryview(b"")
            return b"".join(parts)
        if not self._next():
            return b""
        piece = bytes(self._current[:size])
        self._current = self._current[len(piece) :]
        return piece

    def close(self) -> None:
        self._current = memoryview(b"")
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


class _Restorer:
    def __init__(
        self,
        store: ObjectStore,
        base: str,
        keys: DatasetKeys,
        progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.store = store
        self.base = base
        self.keys = keys
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()
        self.buffers = _Buffers()
        self.failed = threading.Event()

    def check(self, entry: FileEntry, size: int, sha256: str) -> None:
        if size != entry.size or not hmac.compare_digest(sha256, entry.sha256):
            raise FileIntegrityError(
                f"restored {entry.path!r} does not match its snapshot record "
                f"(size {size} vs {entry.size}, or sha256 differs)"
            )

    def pieces(self, entry: FileEntry) -> Iterator[memoryview]:
        """Yield the file's plaintext in order; the last piece only once the file checks out.

        Each yielded view is valid until the next one is requested (buffers are reused).
        """
        buffers = self.buffers
        sealed = memoryview(buffers.sealed)
        plain = buffers.plain
        which = 0
        digest = hashlib.sha256()
        size = 0
        pending: memoryview | None = None
        for cid in entry.chunks:
            if self.failed.is_set():
                raise _Cancelled
            with self.store.open(chunk_object(self.base, cid)) as body:
                header = sealed[:CHUNK_HEADER_SIZE]
                if _read_exact(body, header) != CHUNK_HEADER_SIZE:
                    raise ChunkCorrupt(cid, "unknown format or truncated")
                opener = ChunkOpener(self.keys, cid, header)
                held = 0  # bytes at the start of `sealed` that may be the tag
                while True:
                    n = _readinto(body, sealed[held : held + _PIECE])
                    if not n:
                        break
                    available = held + n
                    if available <= TAG_SIZE:
                        held = available
                        continue
                    ready = available - TAG_SIZE
                    out = plain[which]
                    produced = opener.update_into(sealed[:ready], out)
                    tail = bytes(sealed[ready:available])
                    sealed[:TAG_SIZE] = tail
                    held = TAG_SIZE
                    piece = memoryview(out)[:produced]
                    digest.update(piece)
                    size += produced
                    if size > entry.size:
                        self.check(entry, size, "")
                    # Hold each piece back until the next exists: the final one waits for checks.
                    if pending is not None:
                        yield pending
                    pending = piece
                    which ^= 1
                if held != TAG_SIZE:
                    raise ChunkCorrupt(cid, "unknown format or truncated")
                opener.finish(bytes(sealed[:TAG_SIZE]))
        self.check(entry, size, digest.hexdigest())
        if pending is not None:
            yield pending

    def restore_file(self, entry: FileEntry, destination: ObjectStore, key: str) -> int:
        if self.failed.is_set():
            raise _Cancelled
        if entry.size <= _WHOLE_FILE_MAX and len(entry.chunks) <= 1:
            # Small: fetch the one chunk whole, check, store in one piece.
            data = b""
            if entry.chunks:
                cid = entry.chunks[0]
                data = decrypt_chunk(self.keys, cid, self.store.get(chunk_object(self.base, cid)))
            self.check(entry, len(data), hashlib.sha256(data).hexdigest())
            destination.put(key, data)
        else:
            stream = _FileStream(self.pieces(entry))
            try:
                # Stores only call read()/readinto() on a stream, which this one provides.
                destination.put(key, cast(BinaryIO, stream))
            finally:
                stream.close()
        with self.lock:
            self.done += entry.size
            if self.progress is not None:
                self.progress(self.done, self.total)
        return entry.size


class _Cancelled(Exception):
    """A worker noticed that another one failed and stopped early."""


def restore(
    store: ObjectStore,
    base: str,
    data_key: bytes,
    manifest_id: str,
    destination: ObjectStore,
    destination_prefix: str = "",
    *,
    path_prefix: str = "",
    threads: int = DEFAULT_THREADS,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """Write the snapshot's files (those under `path_prefix`) below `destination_prefix`.

    Rules: every path is checked before anything is written (UnsafePath); every file's size
    and sha256 must match the manifest (FileIntegrityError) and chunks must authenticate
    (ChunkCorrupt), otherwise that file is not stored and the restore fails.
    """
    if threads < 1:
        raise ValueError("threads must be positive")
    keys = DatasetKeys.from_data_key(data_key)
    manifest = _load_manifest(store, base, keys, manifest_id)
    entries = _selected(manifest.files, path_prefix)
    for entry in entries:
        check_manifest_path(entry.path)
    # Largest first, so the long files start early and small ones fill the gaps.
    entries.sort(key=lambda e: e.size, reverse=True)
    total = sum(e.size for e in entries)

    restorer = _Restorer(store, base, keys, progress, total)
    with ThreadPoolExecutor(threads, thread_name_prefix="restore") as pool:
        futures = [
            pool.submit(restorer.restore_file, e, destination, join_key(destination_prefix, e.path))
            for e in entries
        ]
        restored = 0
        error: BaseException | None = None
        try:
            for future in as_completed(futures):
                try:
                    restored += future.result()
                except _Cancelled:
                    continue
                except Exception as exc:
                    if error is None:
                        error = exc
                        restorer.failed.set()
                        for f in futures:
                            f.cancel()
        except BaseException:
            # E.g. KeyboardInterrupt: stop the workers before leaving the pool.
            restorer.failed.set()
            for f in futures:
                f.cancel()
            raise
        if error is not None:
            raise error
    return RestoreResult(manifest_id, files_restored=len(entries), bytes_restored=restored)
