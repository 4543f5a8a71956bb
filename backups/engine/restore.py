"""Restore a snapshot into any object store, verifying every byte on the way.

Each file is streamed: its chunks are fetched ahead in parallel (a bounded window per file, a
shared cap on chunks in flight), decrypted, hashed, and handed to the destination's `put` as a
stream. The last bytes of a file are released only after its size and sha256 match the manifest,
so a destination never receives a complete-looking file with wrong content.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import BinaryIO, cast

from backups.engine.crypto import DatasetKeys, decrypt_chunk
from backups.engine.errors import FileIntegrityError, UnsafePath
from backups.engine.manifest import FileEntry
from backups.engine.repository import _load_manifest, chunk_object
from backups.storage import InvalidKey, ObjectStore, join_key, validate_key

DEFAULT_THREADS = 16
# Chunks fetched ahead of the writer, per file: enough to hide one round trip.
_WINDOW = 3

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


class _VerifyingReader:
    """A file's plaintext as a stream, fetched ahead and checked before its last byte leaves."""

    def __init__(self, restorer: _Restorer, entry: FileEntry) -> None:
        self._restorer = restorer
        self._entry = entry
        self._next = 0
        self._inflight: deque[Future[bytes]] = deque()
        self._buffer = b""
        self._offset = 0
        self._digest = hashlib.sha256()
        self._size = 0

    def _fill(self) -> bool:
        chunks = self._entry.chunks
        slots = self._restorer.slots
        while self._next < len(chunks) and len(self._inflight) < _WINDOW:
            # Block only when this file has nothing in flight; holding a slot guarantees the
            # head chunk is fetching, so every waiting file eventually gets one (no deadlock).
            if not slots.acquire(blocking=not self._inflight):
                break
            cid = chunks[self._next]
            self._inflight.append(self._restorer.fetcher.submit(self._restorer.fetch, cid))
            self._next += 1
        if not self._inflight:
            return False
        future = self._inflight.popleft()
        try:
            data = future.result()
        finally:
            slots.release()
        self._digest.update(data)
        self._size += len(data)
        if not self._inflight and self._next == len(chunks):
            self._restorer.check(self._entry, self._size, self._digest.hexdigest())
        self._buffer, self._offset = data, 0
        return True

    def read(self, size: int = -1) -> bytes:
        if self._offset >= len(self._buffer) and not self._fill():
            return b""
        end = len(self._buffer) if size < 0 else self._offset + size
        piece = self._buffer[self._offset : end]
        self._offset += len(piece)
        return piece

    def drain(self) -> None:
        """Release slots of chunks still in flight after a failure elsewhere."""
        while self._inflight:
            self._inflight.popleft().cancel()
            self._restorer.slots.release()


class _Restorer:
    def __init__(
        self,
        store: ObjectStore,
        base: str,
        keys: DatasetKeys,
        fetcher: ThreadPoolExecutor,
        slots: threading.Semaphore,
        progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.store = store
        self.base = base
        self.keys = keys
        self.fetcher = fetcher
        self.slots = slots
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def fetch(self, cid: str) -> bytes:
        return decrypt_chunk(self.keys, cid, self.store.get(chunk_object(self.base, cid)))

    def check(self, entry: FileEntry, size: int, sha256: str) -> None:
        if size != entry.size or not hmac.compare_digest(sha256, entry.sha256):
            raise FileIntegrityError(
                f"restored {entry.path!r} does not match its snapshot record "
                f"(size {size} vs {entry.size}, or sha256 differs)"
            )

    def restore_file(self, entry: FileEntry, destination: ObjectStore, key: str) -> int:
        if len(entry.chunks) <= 1:
            # One chunk or none: fetch in this thread, check, store in one piece. The chunk
            # takes a slot like prefetched ones, so `threads` bounds the chunks in memory.
            with self.slots:
                data = self.fetch(entry.chunks[0]) if entry.chunks else b""
                self.check(entry, len(data), hashlib.sha256(data).hexdigest())
                destination.put(key, data)
        else:
            reader = _VerifyingReader(self, entry)
            try:
                # Stores only call read() on a stream, which the reader provides.
                destination.put(key, cast(BinaryIO, reader))
            finally:
                reader.drain()
        with self.lock:
            self.done += entry.size
            if self.progress is not None:
                self.progress(self.done, self.total)
        return entry.size


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
    entries.sort(key=lambda e: e.size, reverse=True)
    total = sum(e.size for e in entries)

    # Writers pull whole files (one chunk in their own thread); fetchers prefetch the chunks of
    # multi-chunk files. A shared semaphore caps chunks in flight across both at `threads`.
    writers = threads
    with (
        ThreadPoolExecutor(threads, thread_name_prefix="restore-fetch") as fetcher,
        ThreadPoolExecutor(writers, thread_name_prefix="restore-write") as pool,
    ):
        restorer = _Restorer(
            store, base, keys, fetcher, threading.Semaphore(threads), progress, total
        )
        futures = [
            pool.submit(restorer.restore_file, e, destination, join_key(destination_prefix, e.path))
            for e in entries
        ]
        try:
            restored = sum(f.result() for f in as_completed(futures))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return RestoreResult(manifest_id, files_restored=len(entries), bytes_restored=restored)
