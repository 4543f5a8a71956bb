"""Restore a snapshot into any object store, verifying every byte on the way.

Format 2 snapshots go to `packed_restore`; what follows describes format 1 (a chunk per object).

Workers restore whole files from a size-sorted queue, half of them from the largest end and half
from the smallest: big files are bound by bytes moved and small ones by per-request work, so
both kinds run side by side instead of a long tail of small requests at the end. Each file's
chunks are fetched whole into reused buffers (draining the connection at once), decrypted in
cache-sized pieces, hashed and handed to the destination's `put` as a stream. Once every file
has a worker, idle capacity prefetches later chunks of the files still running, so a few big
files are not restored one request at a time. Memory is bounded: a chunk buffer per worker
plus at most threads/2 prefetched chunks.

Nothing unverified becomes visible: a chunk's GCM tag is checked before the next chunk starts,
and the last piece of a file is released only after the file's size and sha256 match the
manifest, so a destination never receives a complete-looking file with wrong content (`put`
stores nothing when the stream it reads raises).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, cast

from backups.engine.crypto import (
    CHUNK_HEADER_SIZE,
    OVERHEAD,
    TAG_SIZE,
    ChunkOpener,
    DatasetKeys,
    decrypt_chunk,
)
from backups.engine.errors import ChunkCorrupt, FileIntegrityError, ManifestCorrupt, UnsafePath
from backups.engine.filestream import FileStream
from backups.engine.manifest import FileEntry, Manifest
from backups.engine.packed_restore import restore_packed
from backups.engine.packs import PackIndex, load_pack_index
from backups.engine.repository import _load_manifest, chunk_object
from backups.engine.segments import iter_segments
from backups.storage import InvalidKey, ObjectStore, join_key, validate_key
from backups.storage.base import readinto_of

DEFAULT_THREADS = 16
# Ciphertext read (and plaintext released) per step: big enough that per-call overhead is
# noise, small enough to stay in cache between socket, cipher, hash and file write.
_PIECE = 256 * 1024
# Files up to this size are fetched whole and decrypted in one call: fewer steps per file.
_WHOLE_FILE_MAX = _PIECE
# Ciphertext drained per read is at most this (a chunk of the default size fits whole).
# Chunks of one file fetched ahead of the one being decrypted, when workers are idle.
_PREFETCH = 4

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


def _selected(entries: Sequence[FileEntry], path_prefix: str) -> list[FileEntry]:
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
        self.sealed = bytearray()
        # Plaintext: two, so one piece can wait (unreleased) while the next is decrypted.
        # update_into wants room for a block beyond the input.
        self.plain = (bytearray(_PIECE + 16), bytearray(_PIECE + 16))

    def sealed_view(self, size: int) -> memoryview:
        if len(self.sealed) < size:
            # Grown on demand: a worker that only meets small files never holds a big buffer.
            self.sealed = bytearray(size)
        return memoryview(self.sealed)[:size]


class _BufferPool:
    """Reused sealed-chunk buffers for prefetching (fresh multi-MiB allocations per chunk cost
    page faults and leave glibc arenas holding memory)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def get(self) -> bytearray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(self._size)

    def put(self, buffer: bytearray) -> None:
        with self._lock:
            self._free.append(buffer)


class _Restorer:
    def __init__(
        self,
        store: ObjectStore,
        base: str,
        keys: DatasetKeys,
        progress: ProgressCallback | None,
        total: int,
        chunk_size: int,
        prefetcher: ThreadPoolExecutor,
        prefetch_slots: int,
    ) -> None:
        self.store = store
        # Room for a whole sealed chunk (fixed-size chunking) and one byte to spot a larger one.
        self.sealed_size = chunk_size + OVERHEAD + 1
        self.prefetcher = prefetcher
        # Prefetched chunks waiting in memory, across all files.
        self.slots = threading.Semaphore(prefetch_slots)
        self.pool = _BufferPool(self.sealed_size)
        # Set once every file has been handed to a worker: from then on, prefetch.
        self.queue_drained = threading.Event()
        self.base = base
        self.keys = keys
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()
        self.buffers = _Buffers()
        self.failed = threading.Event()
        self.error: BaseException | None = None

    def check(self, entry: FileEntry, size: int, sha256: str) -> None:
        if size != entry.size or not hmac.compare_digest(sha256, entry.sha256):
            raise FileIntegrityError(
                f"restored {entry.path!r} does not match its snapshot record "
                f"(size {size} vs {entry.size}, or sha256 differs)"
            )

    def fetch(self, cid: str, buffer: memoryview) -> int:
        """Read a whole sealed chunk into `buffer`, as fast as it arrives; returns its length.

        Draining the connection at once matters: a reader that dawdles keeps the server's
        sending thread waking up for every few socket buffers.
        """
        with self.store.open(chunk_object(self.base, cid)) as body:
            n = _read_exact(body, buffer)
        if n == len(buffer):
            # The buffer has one byte more than the largest valid chunk.
            raise ChunkCorrupt(cid, "larger than a chunk of this snapshot")
        return n

    def pieces(self, entry: FileEntry) -> Iterator[memoryview]:
        """Yield the file's plaintext in order; the last piece only once the file checks out.

        Chunks are fetched whole (the worker fetches the next one itself; once every file has
        a worker, idle capacity prefetches later chunks of the files still running, so one big
        file is not restored one request at a time), then decrypted, hashed and released in
        cache-sized pieces. Each yielded view is valid until the next one is requested.
        """
        chunks = entry.chunks
        # A one-chunk file needs no more than its own size plus the encryption overhead.
        own = self.buffers.sealed_view(min(self.sealed_size, entry.size + OVERHEAD + 1))
        plain = self.buffers.plain
        which = 0
        digest = hashlib.sha256()
        size = 0
        pending: memoryview | None = None
        ahead: deque[tuple[int, Future[int], bytearray]] = deque()
        following = 1  # the next chunk index that may be prefetched
        buffer: bytearray | None = None
        try:
            for index, cid in enumerate(chunks):
                if self.failed.is_set():
                    raise _Cancelled
                following = max(following, index + 1)
                while (
                    self.queue_drained.is_set()
                    and following < len(chunks)
                    and following - index <= _PREFETCH
                    and self.slots.acquire(blocking=False)
                ):
                    spare = self.pool.get()
                    future = self.prefetcher.submit(
                        self.fetch, chunks[following], memoryview(spare)
                    )
                    ahead.append((following, future, spare))
                    following += 1
                if ahead and ahead[0][0] == index:
                    _, future, buffer = ahead.popleft()
                    try:
                        sealed = memoryview(buffer)[: future.result()]
                    except BaseException:
                        self._recycle(buffer)
                        raise
                else:
                    buffer = None
                    sealed = own[: self.fetch(cid, own)]
                try:
                    if len(sealed) < OVERHEAD:
                        raise ChunkCorrupt(cid, "unknown format or truncated")
                    opener = ChunkOpener(self.keys, cid, sealed[:CHUNK_HEADER_SIZE])
                    ciphertext = sealed[CHUNK_HEADER_SIZE : len(sealed) - TAG_SIZE]
                    for start in range(0, len(ciphertext), _PIECE):
                        out = plain[which]
                        produced = opener.update_into(ciphertext[start : start + _PIECE], out)
                        piece = memoryview(out)[:produced]
                        digest.update(piece)
                        size += produced
                        # Hold each piece back until the next exists: the last waits for checks.
                        if pending is not None:
                            yield pending
                        pending = piece
                        which ^= 1
                    opener.finish(bytes(sealed[len(sealed) - TAG_SIZE :]))
                    if size > entry.size:
                        # Authentic chunks, but more of them than the file holds.
                        self.check(entry, size, "")
                finally:
                    del sealed
                    if buffer is not None:
                        self._recycle(buffer)
            self.check(entry, size, digest.hexdigest())
            if pending is not None:
                yield pending
        finally:
            for _, future, spare in ahead:
                if future.cancel():
                    self._recycle(spare)
                else:
                    future.add_done_callback(functools.partial(self._recycle_later, spare))

    def _recycle_later(self, buffer: bytearray, _future: Future[int]) -> None:
        self._recycle(buffer)

    def _recycle(self, buffer: bytearray) -> None:
        self.pool.put(buffer)
        self.slots.release()

    def work(
        self, queue: _TwoEndedQueue, smallest: bool, destination: ObjectStore, prefix: str
    ) -> None:
        """One worker: restore files from its end of the queue until it is empty or one fails."""
        try:
            while not self.failed.is_set():
                entry = queue.take(smallest)
                if entry is None:
                    self.queue_drained.set()
                    return
                self.restore_file(entry, destination, join_key(prefix, entry.path))
        except _Cancelled:
            return
        except BaseException as exc:
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.failed.set()

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
            stream = FileStream(self.pieces(entry))
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


class _TwoEndedQueue:
    """Files sorted by size, handed out from either end."""

    def __init__(self, entries: list[FileEntry]) -> None:
        self._entries = deque(entries)  # largest first
        self._lock = threading.Lock()

    def take(self, smallest: bool) -> FileEntry | None:
        with self._lock:
            if not self._entries:
                return None
            return self._entries.pop() if smallest else self._entries.popleft()


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
    # Format 2 needs the pack indexes for the file list and the data: read them once.
    index = load_pack_index(store, base, keys, packs=False)
    manifest = _load_manifest(store, base, keys, manifest_id, index, files=False)
    if not manifest.files_loaded:
        return _restore_streamed(
            store,
            base,
            keys,
            index,
            manifest,
            destination,
            destination_prefix,
            path_prefix=path_prefix,
            threads=threads,
            progress=progress,
        )
    entries = _selected(manifest.files, path_prefix)
    for entry in entries:
        check_manifest_path(entry.path)
    if manifest.format == 2:
        restored = restore_packed(
            store,
            base,
            keys,
            index,
            [entries],
            sum(e.size for e in entries),
            destination,
            destination_prefix,
            threads=threads,
            progress=progress,
        )
        return RestoreResult(manifest_id, files_restored=len(entries), bytes_restored=restored)
    entries.sort(key=lambda e: e.size, reverse=True)
    total = sum(e.size for e in entries)

    # Half the workers take the largest files left, half the smallest: big files are bound by
    # bytes moved, small ones by per-request work on the server; running both kinds side by side
    # keeps both busy, where largest-first leaves a long tail of small requests at the end.
    lanes = [i % 2 == 1 for i in range(threads)]
    prefetch_slots = max(1, threads // 2)
    with (
        ThreadPoolExecutor(prefetch_slots, thread_name_prefix="restore-prefetch") as prefetcher,
        ThreadPoolExecutor(threads, thread_name_prefix="restore") as pool,
    ):
        restorer = _Restorer(
            store, base, keys, progress, total, manifest.chunk_size, prefetcher, prefetch_slots
        )
        queue = _TwoEndedQueue(entries)
        futures = [
            pool.submit(restorer.work, queue, smallest, destination, destination_prefix)
            for smallest in lanes
        ]
        try:
            for future in futures:
                future.exception()  # waits; the first failure is kept by the restorer
        except BaseException:
            # E.g. KeyboardInterrupt: stop the workers before leaving the pools.
            restorer.failed.set()
            raise
    if restorer.error is not None:
        raise restorer.error
    restored = restorer.done
    return RestoreResult(manifest_id, files_restored=len(entries), bytes_restored=restored)


def _restore_streamed(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    index: PackIndex,
    manifest: Manifest,
    destination: ObjectStore,
    destination_prefix: str,
    *,
    path_prefix: str,
    threads: int,
    progress: ProgressCallback | None,
) -> RestoreResult:
    """A format-2 snapshot restored without holding its file list: a first pass over the
    segments checks every path (nothing is written before all are safe) and counts the bytes
    for progress; the second restores segment by segment."""

    def batches() -> Iterator[list[FileEntry]]:
        for _, entries in iter_segments(store, base, keys, manifest, index):
            selected = _selected(entries, path_prefix)
            if selected:
                yield selected

    files = total = 0
    for batch in batches():
        for entry in batch:
            check_manifest_path(entry.path)
            files += 1
            total += entry.size
    if not path_prefix.strip("/") and files != manifest.file_count:
        raise ManifestCorrupt(manifest.id, "its file list does not hold the files it counts")
    restored = restore_packed(
        store,
        base,
        keys,
        index,
        batches(),
        total,
        destination,
        destination_prefix,
        threads=threads,
        progress=progress,
    )
    return RestoreResult(manifest.id, files_restored=files, bytes_restored=restored)
