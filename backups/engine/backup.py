"""Take a snapshot of a source prefix into one or more repositories, in format 1.

What both formats share is here too: the source listing, the statistics and the result.

Pipeline: reader threads stream each changed file in fixed-size chunks (hashing the file and
naming each chunk as they go) and hand chunks that a target lacks to uploader threads, which
encrypt and store them. A byte budget caps the chunks held in memory between the two, so memory
stays bounded whatever the file sizes. The manifest is written last, once every chunk is stored:
an interrupted run leaves no snapshot, and its uploaded chunks are found and reused next time.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from backups.engine.crypto import (
    OVERHEAD,
    DatasetKeys,
    chunk_id,
    encrypt_chunk,
    encrypt_chunk_into,
)
from backups.engine.errors import SourceEmpty
from backups.engine.manifest import FileEntry, Manifest, new_manifest_id
from backups.engine.repository import (
    Target,
    chunk_object,
    list_chunks,
    require_repository,
    store_manifest,
)
from backups.storage import InvalidKey, ObjectInfo, ObjectStore, read_full, validate_key
from backups.storage.base import readinto_of

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 4 * MIB
DEFAULT_THREADS = 16
_DEFAULT_CHUNKS_IN_FLIGHT = 8

ProgressCallback = Callable[[int, int], None]


@dataclass
class BackupStats:
    files_seen: int = 0
    bytes_seen: int = 0
    files_reused: int = 0
    files_read: int = 0
    bytes_read: int = 0
    chunks_uploaded: int = 0
    bytes_uploaded: int = 0
    chunks_deduplicated: int = 0
    skipped_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BackupResult:
    manifest_id: str
    manifest: Manifest
    stats: BackupStats


class _CancelledError(Exception):
    """A worker noticed that another one failed and stopped early."""


class _ByteBudget:
    """A counting semaphore measured in bytes: caps plaintext held between reading and upload."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._available = capacity
        self._cond = threading.Condition()

    def acquire(self, amount: int) -> int:
        # A request above capacity is clamped, or it could never be granted.
        amount = min(amount, self._capacity)
        with self._cond:
            self._cond.wait_for(lambda: self._available >= amount)
            self._available -= amount
        return amount

    def release(self, amount: int) -> None:
        with self._cond:
            self._available += amount
            self._cond.notify_all()


class _BufferPool:
    """Reused chunk-sized buffers.

    Fresh multi-MiB allocations freed by other threads scatter over glibc's per-thread arenas,
    which keep the memory: the process grows well past what is actually in flight. Reusing a
    few buffers keeps RSS at the byte budget (and saves page faults on every chunk).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def get(self) -> bytearray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return bytearray(self.size)

    def put(self, buffer: bytearray | None) -> None:
        if buffer is not None:
            with self._lock:
                self._free.append(buffer)


def _read_into(stream: BinaryIO, buffer: bytearray) -> int:
    """Fill `buffer` from the stream unless EOF comes first; returns the bytes read."""
    view = memoryview(buffer)
    readinto = readinto_of(stream)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            piece = stream.read(len(view) - got)
            n = len(piece)
            view[got : got + n] = piece
        if not n:
            break
        got += n
    return got


class RunState:
    """What the worker threads of one backup (either format) share: the first error, a
    failure flag every worker checks, and progress reported in order under one lock."""

    def __init__(self, progress: ProgressCallback | None, bytes_total: int) -> None:
        self.progress = progress
        self.bytes_total = bytes_total
        self.bytes_done = 0
        self.stats = BackupStats()
        self.lock = threading.Lock()
        self.failed = threading.Event()
        self.error: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.failed.set()

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self.bytes_done += nbytes
            done = self.bytes_done
            # Called under the lock so callbacks arrive in order, one at a time.
            if self.progress is not None:
                self.progress(done, self.bytes_total)


class _Run(RunState):
    """State shared by the reader and uploader threads of one backup."""

    def __init__(
        self,
        keys: DatasetKeys,
        targets: Sequence[Target],
        present: list[set[str]],
        chunk_size: int,
        budget: _ByteBudget,
        uploaders: ThreadPoolExecutor,
        progress: ProgressCallback | None,
        bytes_total: int,
    ) -> None:
        super().__init__(progress, bytes_total)
        self.keys = keys
        self.targets = targets
        self.present = present
        self.chunk_size = chunk_size
        self.budget = budget
        self.uploaders = uploaders
        self.scheduled: set[str] = set()
        self.plain_pool = _BufferPool(chunk_size)
        self.sealed_pool = _BufferPool(chunk_size + OVERHEAD)

    def read_file(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry:
        """Stream one file: sha256 of the whole, an id per chunk, upload what targets lack."""
        digest = hashlib.sha256()
        ids: list[str] = []
        size = 0
        with source.open(info.key) as stream:
            while True:
                if self.failed.is_set():
                    raise _CancelledError
                # Reserve memory before reading, sized by what the listing says is left.
                held = self.budget.acquire(max(1, min(self.chunk_size, info.size - size)))
                pooled: bytearray | None = None
                data: bytes | memoryview
                try:
                    if info.size - size >= self.chunk_size:
                        # A whole chunk expected: read it into a reused buffer.
                        pooled = self.plain_pool.get()
                        data = memoryview(pooled)[: _read_into(stream, pooled)]
                    else:
                        data = read_full(stream, self.chunk_size)
                except BaseException:
                    self.plain_pool.put(pooled)
                    self.budget.release(held)
                    raise
                if not data:
                    self.plain_pool.put(pooled)
                    self.budget.release(held)
                    break
                digest.update(data)
                cid = chunk_id(self.keys, data)
                ids.append(cid)
                size += len(data)
                self._dispatch(cid, data, held, pooled)
                if len(data) < self.chunk_size:
                    break
        with self.lock:
            self.stats.files_read += 1
            self.stats.bytes_read += size
        return FileEntry(
            path=path,
            size=size,
            mtime=info.mtime,
            etag=info.etag,
            sha256=digest.hexdigest(),
            chunks=tuple(ids),
        )

    def _dispatch(
        self, cid: str, data: bytes | memoryview, held: int, pooled: bytearray | None
    ) -> None:
        with self.lock:
            needs = [i for i, have in enumerate(self.present) if cid not in have]
            fresh = bool(needs) and cid not in self.scheduled
            if fresh:
                self.scheduled.add(cid)
            else:
                self.stats.chunks_deduplicated += 1
        if not fresh:
            self.plain_pool.put(pooled)
            self.budget.release(held)
            self.advance(len(data))
            return
        self.uploaders.submit(self._upload, cid, data, needs, held, pooled)

    def _upload(
        self,
        cid: str,
        data: bytes | memoryview,
        needs: list[int],
        held: int,
        pooled: bytearray | None,
    ) -> None:
        sealed_pooled: bytearray | None = None
        try:
            if self.failed.is_set():
                return
            if len(data) == self.chunk_size:
                sealed_pooled = sealed = self.sealed_pool.get()
                encrypt_chunk_into(self.keys, cid, data, sealed)
            else:
                sealed = encrypt_chunk(self.keys, cid, data)
            for index in needs:
                target = self.targets[index]
                target.store.put(chunk_object(target.base, cid), sealed)
                with self.lock:
                    self.present[index].add(cid)
            with self.lock:
                self.stats.chunks_uploaded += 1
                self.stats.bytes_uploaded += len(data)
            self.advance(len(data))
        except BaseException as exc:
            # Nobody waits on this future's result: the error must be recorded here.
            self.fail(exc)
        finally:
            # put() has returned: nothing refers to the buffers any more.
            del data
            self.sealed_pool.put(sealed_pooled)
            self.plain_pool.put(pooled)
            self.budget.release(held)

    def read_task(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry | None:
        try:
            return self.read_file(source, info, path)
        except _CancelledError:
            return None
        except BaseException as exc:
            self.fail(exc)
            return None


def _unchanged(entry: FileEntry | None, info: ObjectInfo, present: list[set[str]]) -> bool:
    """The incremental rule: same size, mtime and etag, and every chunk on every target."""
    return (
        entry is not None
        and entry.size == info.size
        and entry.mtime == info.mtime
        and entry.etag == info.etag
        and all(cid in have for have in present for cid in entry.chunks)
    )


def source_items(
    source: ObjectStore, prefix: str, skipped: list[str], declined: list[str]
) -> Iterator[tuple[str, ObjectInfo]]:
    """(path, info) of every object to back up, as the source lists it (in key order). Keys
    unsafe to restore go to `skipped` as they come; those the source declined (a local
    directory's symlinks and special files: named on the run like unsafe keys, never read) to
    `declined`, and to `skipped` at the end."""
    for info in source.list(prefix, skipped=declined):
        if info.key.endswith("/"):
            continue  # "folder" placeholder objects carry no data
        path = info.key[len(prefix) :]
        try:
            validate_key(path)
        except InvalidKey:
            skipped.append(info.key)
            continue
        yield path, info
    skipped.extend(declined)


def source_empty(source: ObjectStore, source_prefix: str, declined: list[str]) -> SourceEmpty:
    refused = f" (not followed: {', '.join(declined[:5])})" if declined else ""
    return SourceEmpty(f"no objects under {source_prefix!r} in {source.describe()}{refused}")


def _source_listing(
    source: ObjectStore, prefix: str, source_prefix: str, *, allow_empty: bool
) -> tuple[list[tuple[str, ObjectInfo]], list[str]]:
    """(path, info) of every object to back up, and the keys skipped: unsafe to restore, or
    declined by the source. An empty source is refused (SourceEmpty) unless `allow_empty`."""
    skipped: list[str] = []
    declined: list[str] = []
    listing = list(source_items(source, prefix, skipped, declined))
    if not listing and not allow_empty:
        raise source_empty(source, source_prefix, declined)
    return listing, skipped


def _reused_and_to_read(
    listing: list[tuple[str, ObjectInfo]],
    parent: Manifest | None,
    chunk_size: int,
    present: list[set[str]],
) -> tuple[dict[str, FileEntry], list[tuple[str, ObjectInfo]]]:
    """The parent's entries of unchanged files every target still holds, and the files to read."""
    # A parent chunked differently cannot be mixed into this manifest's fixed chunk size.
    reusable = parent is not None and parent.format == 1 and parent.chunk_size == chunk_size
    previous = {e.path: e for e in parent.files} if parent is not None and reusable else {}

    entries: dict[str, FileEntry] = {}
    to_read: list[tuple[str, ObjectInfo]] = []
    for path, info in listing:
        old = previous.get(path)
        if old is not None and _unchanged(old, info, present):
            entries[path] = old
        else:
            to_read.append((path, info))
    return entries, to_read


def _manifest_store(
    repos: Sequence[Target],
    keys: DatasetKeys,
    entries: dict[str, FileEntry],
    source_prefix: str,
    chunk_size: int,
    parent: Manifest | None,
    created: datetime,
) -> Manifest:
    """Write the snapshot's manifest to every target (its chunks are all stored by now)."""
    manifest = Manifest(
        id=new_manifest_id(created),
        created=created,
        source_prefix=source_prefix,
        chunk_size=chunk_size,
        parent_id=parent.id if parent is not None else None,
        files=tuple(entries[path] for path in sorted(entries)),
        format=1,
    )
    for repo in repos:
        store_manifest(repo.store, repo.base, keys, manifest)
    return manifest


def backup_fixed(
    source: ObjectStore,
    source_prefix: str,
    targets: Sequence[tuple[ObjectStore, str]],
    data_key: bytes,
    parent: Manifest | None = None,
    *,
    progress: ProgressCallback | None = None,
    threads: int = DEFAULT_THREADS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_in_flight_bytes: int | None = None,
    now: datetime | None = None,
    allow_empty: bool = False,
) -> BackupResult:
    """Format 1 (fixed-size chunks, one object each): kept so tests and the bench can build
    the repositories older releases wrote; new snapshots are format 2 (`backup`).

    Back up every object under `source_prefix` to every target and record one snapshot.

    Rules: files matching the parent manifest (size, mtime, etag) whose chunks every target
    holds are not re-read; chunks a target already holds are not re-uploaded; the manifest is
    written only after every chunk is stored on every target; an empty source is refused unless
    `allow_empty`. Keys that could not be restored safely ('..', empty parts) are skipped and
    reported in `stats.skipped_keys`, and so are the entries the source declines to list
    (symlinks, FIFOs, sockets, devices in a local directory): their targets are never read.
    `progress(bytes_done, bytes_total)` is called from worker threads, serialized. Storage
    errors propagate with their own types; no snapshot is recorded.
    """
    if threads < 1 or chunk_size < 1:
        raise ValueError("threads and chunk_size must be positive")
    keys = DatasetKeys.from_data_key(data_key)
    repos = [Target(store, base) for store, base in targets]
    if not repos:
        raise ValueError("at least one target is required")
    for repo in repos:
        require_repository(repo.store, repo.base)
    prefix = source_prefix.strip("/") + "/" if source_prefix.strip("/") else ""

    listing, skipped = _source_listing(source, prefix, source_prefix, allow_empty=allow_empty)
    present = [set(list_chunks(repo.store, repo.base)) for repo in repos]
    entries, to_read = _reused_and_to_read(listing, parent, chunk_size, present)
    # Largest first, so the long files start early and small ones fill the gaps.
    to_read.sort(key=lambda item: item[1].size, reverse=True)

    # Eight chunks in flight keep the uploaders busy (reading and sealing a chunk is far faster
    # than storing it); more only adds memory (each in-flight chunk also has a sealed copy).
    budget = _ByteBudget(
        max_in_flight_bytes or min(threads, _DEFAULT_CHUNKS_IN_FLIGHT) * chunk_size
    )
    bytes_total = sum(info.size for _, info in listing)
    with ThreadPoolExecutor(threads, thread_name_prefix="backup-upload") as uploaders:
        run = _Run(keys, repos, present, chunk_size, budget, uploaders, progress, bytes_total)
        run.stats.skipped_keys = skipped
        run.stats.files_seen = len(listing)
        run.stats.bytes_seen = bytes_total
        run.stats.files_reused = len(entries)
        try:
            run.advance(sum(entry.size for entry in entries.values()))
            with ThreadPoolExecutor(threads, thread_name_prefix="backup-read") as readers:
                futures = [
                    readers.submit(run.read_task, source, info, path) for path, info in to_read
                ]
                for future in as_completed(futures):
                    entry = future.result()
                    if entry is not None:
                        entries[entry.path] = entry
        except BaseException as exc:
            # E.g. KeyboardInterrupt or a failing progress callback: stop the workers too.
            run.fail(exc)
            raise
        # Leaving the `with` waits for every queued upload.
    if run.error is not None:
        raise run.error

    manifest = _manifest_store(
        repos, keys, entries, source_prefix, chunk_size, parent, now or datetime.now(UTC)
    )
    return BackupResult(manifest_id=manifest.id, manifest=manifest, stats=run.stats)
