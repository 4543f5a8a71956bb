"""Restore and verify for format 2 (blobs in packs).

Restore: workers take files from both ends of a size-sorted queue (as in format 1). A file's
blobs are read with ranged GETs of their packs, authenticated, decompressed and hashed in
order; its last piece is released only after size and sha256 match, so a destination never
receives a complete-looking file with wrong content.

Reads are coalesced, because a store's cost is per request at least as much as per byte (moto
over loopback: ~10 ms for a 64 KiB range, ~55 ms for a whole 16 MiB pack): a file's blobs that
lie back to back in one pack come with one ranged read (backup writes each file's blobs in runs
of several MiB), and small files that sit next to each other in a pack are fetched together,
so a label set of 20,000 files costs a few reads rather than 20,000. Every blob is still
authenticated on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, cast

from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.errors import ChunkCorrupt, FileIntegrityError
from backups.engine.filestream import FileStream
from backups.engine.manifest import FileEntry, Manifest
from backups.engine.packs import BlobLocation, PackIndex, blob_get, open_blob, pack_object
from backups.storage import ObjectNotFound, ObjectStore, join_key

ProgressCallback = Callable[[int, int], None]
# One ranged read covers neighbouring small files up to this span.
_SPAN = 4 * 1024 * 1024
_GAP = 64 * 1024
# Files up to this size whose blobs lie back to back in one pack are restored in such spans.
_SMALL = 2 * 1024 * 1024
# One ranged read of a big file's consecutive blobs covers at most this much of a pack.
_READ_MAX = 16 * 1024 * 1024
# Reads of one file in flight (the one being hashed and those ahead): at most this many, and
# beyond the first no more than this many sealed bytes, so a few big files restored at once
# keep memory bounded.
_PREFETCH = 4
_AHEAD_BYTES = 8 * 1024 * 1024

_Run = list[tuple[str, BlobLocation]]


def _locate(index: PackIndex, bid: str) -> BlobLocation:
    location = index.blobs.get(bid)
    if location is None:
        raise ChunkCorrupt(bid, "missing: no pack index lists it")
    return location


def _contiguous(previous: BlobLocation, location: BlobLocation, gap: int) -> bool:
    end = previous.offset + previous.length
    return location.pack == previous.pack and 0 <= location.offset - end <= gap


def _runs(index: PackIndex, chunks: tuple[str, ...]) -> list[_Run]:
    """A file's blobs in order, cut into runs that one ranged read each can fetch."""
    runs: list[_Run] = []
    for bid in chunks:
        location = _locate(index, bid)
        if runs:
            run = runs[-1]
            if (
                _contiguous(run[-1][1], location, _GAP)
                and location.offset + location.length - run[0][1].offset <= _READ_MAX
            ):
                run.append((bid, location))
                continue
        runs.append([(bid, location)])
    return runs


def _run_bytes(run: _Run) -> int:
    return run[-1][1].offset + run[-1][1].length - run[0][1].offset


def _check(entry: FileEntry, size: int, sha256: str) -> None:
    if size != entry.size or not hmac.compare_digest(sha256, entry.sha256):
        raise FileIntegrityError(
            f"restored {entry.path!r} does not match its snapshot record "
            f"(size {size} vs {entry.size}, or sha256 differs)"
        )


class PackedRestorer:
    def __init__(
        self,
        store: ObjectStore,
        base: str,
        keys: DatasetKeys,
        index: PackIndex,
        progress: ProgressCallback | None,
        total: int,
        prefetcher: ThreadPoolExecutor,
    ) -> None:
        self.prefetcher = prefetcher
        self.store = store
        self.base = base
        self.keys = keys
        self.index = index
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()
        self.failed = threading.Event()
        self.error: BaseException | None = None

    def _fetch_run(self, run: _Run) -> bytes:
        """The sealed blobs of the run, with one ranged read of their pack."""
        start = run[0][1].offset
        return self.store.get_range(pack_object(self.base, run[0][1].pack), start, _run_bytes(run))

    def _opened(self, run: _Run, span: bytes) -> Iterator[bytes]:
        # One blob at a time, each authenticated on its own: at most one plaintext blob is
        # held beside the sealed span.
        start = run[0][1].offset
        for bid, loc in run:
            sealed = span[loc.offset - start : loc.offset - start + loc.length]
            yield open_blob(self.keys, bid, loc, sealed)

    def _pieces(self, entry: FileEntry) -> Iterator[bytes]:
        """The file's plaintext blob by blob, the next runs fetched ahead, so one big file is
        not restored one request at a time; the last piece only once the whole file's size
        and sha256 match."""
        digest = hashlib.sha256()
        size = 0
        pending: bytes | None = None
        runs = _runs(self.index, entry.chunks)
        ahead: deque[tuple[Future[bytes], int]] = deque()
        in_flight = 0
        following = 0
        try:
            for run in runs:
                if self.failed.is_set():
                    raise _Cancelled
                while following < len(runs) and (
                    not ahead
                    or (
                        len(ahead) < _PREFETCH
                        and in_flight + _run_bytes(runs[following]) <= _AHEAD_BYTES
                    )
                ):
                    nbytes = _run_bytes(runs[following])
                    ahead.append((self.prefetcher.submit(self._fetch_run, runs[following]), nbytes))
                    in_flight += nbytes
                    following += 1
                future, nbytes = ahead.popleft()
                span = future.result()
                in_flight -= nbytes
                for plain in self._opened(run, span):
                    digest.update(plain)
                    size += len(plain)
                    if size > entry.size:
                        _check(entry, size, "")
                    if pending is not None:
                        yield pending
                    pending = plain
            _check(entry, size, digest.hexdigest())
            if pending is not None:
                yield pending
        finally:
            for future, _ in ahead:
                future.cancel()

    def restore_file(self, entry: FileEntry, destination: ObjectStore, key: str) -> None:
        stream = FileStream(memoryview(piece) for piece in self._pieces(entry))
        try:
            destination.put(key, cast(BinaryIO, stream))
        finally:
            stream.close()
        self._advance(entry.size)

    def restore_span(self, group: list[FileEntry], destination: ObjectStore, prefix: str) -> None:
        """Small files lying together in one pack: one ranged read for all."""
        located = [[_locate(self.index, bid) for bid in e.chunks] for e in group]
        start = min(locations[0].offset for locations in located)
        end = max(loc.offset + loc.length for locations in located for loc in locations)
        span = self.store.get_range(pack_object(self.base, located[0][0].pack), start, end - start)
        for entry, locations in zip(group, located, strict=True):
            if self.failed.is_set():
                raise _Cancelled
            plain = b"".join(
                open_blob(
                    self.keys, bid, loc, span[loc.offset - start : loc.offset - start + loc.length]
                )
                for bid, loc in zip(entry.chunks, locations, strict=True)
            )
            _check(entry, len(plain), hashlib.sha256(plain).hexdigest())
            destination.put(join_key(prefix, entry.path), plain)
            self._advance(entry.size)

    def _advance(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            if self.progress is not None:
                self.progress(self.done, self.total)

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.failed.set()


class _Cancelled(Exception):
    pass


def _back_to_back(index: PackIndex, entry: FileEntry) -> tuple[BlobLocation, BlobLocation] | None:
    """(first, last) location of a file whose blobs lie back to back in one pack, else None."""
    locations = [index.blobs.get(bid) for bid in entry.chunks]
    first = locations[0]
    if first is None:
        return None
    previous = first
    for location in locations[1:]:
        if location is None or not _contiguous(previous, location, 0):
            return None
        previous = location
    return first, previous


def _work_items(
    entries: list[FileEntry], index: PackIndex
) -> list[tuple[int, list[FileEntry] | FileEntry]]:
    """(bytes, item): runs of small files by pack and offset, and the other files."""
    small: list[tuple[BlobLocation, BlobLocation, FileEntry]] = []
    items: list[tuple[int, list[FileEntry] | FileEntry]] = []
    for entry in entries:
        bounds = _back_to_back(index, entry) if 0 < entry.size <= _SMALL else None
        if bounds is not None:
            small.append((*bounds, entry))
        else:
            items.append((entry.size, entry))
    small.sort(key=lambda found: (found[0].pack, found[0].offset))
    group: list[FileEntry] = []
    group_start = 0
    group_pack = ""
    group_end = 0
    for first, last, entry in small:
        if group and (
            first.pack != group_pack
            or last.offset + last.length - group_start > _SPAN
            # Other files' blobs in between would be read too: only across small gaps.
            or first.offset - group_end > _GAP
        ):
            items.append((sum(e.size for e in group), group))
            group = []
        if not group:
            group_pack, group_start, group_end = first.pack, first.offset, first.offset
        group.append(entry)
        group_end = max(group_end, last.offset + last.length)
    if group:
        items.append((sum(e.size for e in group), group))
    items.sort(key=lambda item: item[0], reverse=True)
    return items


# Work items queued ahead of the restore workers, counted in files: the file list is read
# segment by segment as the workers catch up, so a restore of a million files holds a few
# segments' entries, not all of them.
_QUEUED_FILES = 16384


class _WorkQueue:
    """Work items of the segments read so far, bounded by the files they hold."""

    def __init__(self, failed: threading.Event) -> None:
        self._items: deque[tuple[int, list[FileEntry] | FileEntry]] = deque()
        self._files = 0
        self._closed = False
        self._failed = failed
        self._changed = threading.Condition()

    def put(self, items: list[tuple[int, list[FileEntry] | FileEntry]]) -> None:
        with self._changed:
            while self._files >= _QUEUED_FILES and not self._failed.is_set():
                self._changed.wait(0.5)
            for item in items:
                self._items.append(item)
                self._files += len(item[1]) if isinstance(item[1], list) else 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def take(self) -> list[FileEntry] | FileEntry | None:
        """The next item; None once the queue is closed and empty, or the restore failed."""
        with self._changed:
            while not self._items and not self._closed and not self._failed.is_set():
                self._changed.wait(0.5)
            if not self._items or self._failed.is_set():
                return None
            _, item = self._items.popleft()
            self._files -= len(item) if isinstance(item, list) else 1
            self._changed.notify_all()
            return item


def restore_packed(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    index: PackIndex,
    batches: Iterable[list[FileEntry]],
    total: int,
    destination: ObjectStore,
    destination_prefix: str,
    *,
    threads: int,
    progress: ProgressCallback | None,
) -> int:
    """Restore the entries of `batches` (one per file-list segment, paths already checked;
    `total` bytes in all); returns the bytes restored. Each batch is planned on its own (small
    files that lie together in a pack share one read; the rest largest first) and queued as
    the workers catch up."""
    prefetcher = ThreadPoolExecutor(threads, thread_name_prefix="restore-prefetch")
    restorer = PackedRestorer(store, base, keys, index, progress, total, prefetcher)
    queue = _WorkQueue(restorer.failed)

    def work() -> None:
        try:
            while (item := queue.take()) is not None:
                if isinstance(item, list):
                    restorer.restore_span(item, destination, destination_prefix)
                elif not item.chunks:
                    _check(item, 0, hashlib.sha256(b"").hexdigest())
                    destination.put(join_key(destination_prefix, item.path), b"")
                else:
                    restorer.restore_file(
                        item, destination, join_key(destination_prefix, item.path)
                    )
        except _Cancelled:
            return
        except BaseException as exc:
            restorer.fail(exc)

    with prefetcher, ThreadPoolExecutor(threads, thread_name_prefix="restore") as pool:
        futures = [pool.submit(work) for _ in range(threads)]
        try:
            for batch in batches:
                if restorer.failed.is_set():
                    break
                queue.put(_work_items(batch, index))
        except BaseException as exc:
            restorer.fail(exc)  # e.g. a segment that does not open: the workers stop too
        finally:
            queue.close()
        try:
            for future in futures:
                future.exception()
        except BaseException:
            restorer.failed.set()
            raise
    if restorer.error is not None:
        raise restorer.error
    return restorer.done


def verify_packed(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    index: PackIndex,
    manifest: Manifest,
    *,
    read_data_subset: float,
    threads: int,
    seed: int | None,
) -> tuple[int, int, list[str], list[str]]:
    """(blobs referenced, blobs read, missing, corrupt) for one format-2 snapshot.

    A blob is missing when no readable index lists it or its pack is gone; corrupt when its
    pack's stored size differs from what the index says, or (for the sampled fraction) it
    does not authenticate, decompress or hash to its id.
    """
    if index.partial:
        raise ValueError("verify needs the full pack index (read with packs=True)")
    needed = sorted(manifest.chunk_ids())
    stored = {
        info.key: info.size
        for info in store.list(pack_object(base, ""))
        if "/" not in info.key[len(pack_object(base, "")) :]
    }
    pack_sizes: dict[str, int] = {}
    for pack_id, blobs in index.packs.items():
        pack_sizes[pack_id] = max((loc.offset + loc.length for _, loc in blobs), default=0)
    missing: list[str] = []
    corrupt: list[str] = []
    readable: list[str] = []
    for bid in needed:
        location = index.blobs.get(bid)
        size = stored.get(pack_object(base, location.pack)) if location is not None else None
        if location is None or size is None:
            missing.append(bid)
        elif size != pack_sizes[location.pack]:
            corrupt.append(bid)
        else:
            readable.append(bid)
    count = math.ceil(len(readable) * read_data_subset)
    # Sampling for coverage, not secrecy: a seeded PRNG makes a drill reproducible.
    sample = random.Random(seed).sample(readable, count)  # noqa: S311

    def check(bid: str) -> str | None:
        try:
            plain = blob_get(store, base, keys, bid, index.blobs[bid])
        except ObjectNotFound:
            return "missing"
        except ChunkCorrupt:
            return "corrupt"
        return None if hmac.compare_digest(chunk_id(keys, plain), bid) else "corrupt"

    with ThreadPoolExecutor(threads, thread_name_prefix="verify") as pool:
        for bid, problem in zip(sample, pool.map(check, sample), strict=True):
            if problem == "missing":
                missing.append(bid)
            elif problem == "corrupt":
                corrupt.append(bid)
    return len(needed), len(sample), missing, corrupt
