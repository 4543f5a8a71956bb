"""Restore and verify for format 2 (blobs in packs).

Restore: workers take files from both ends of a size-sorted queue (as in format 1). A file's
blobs are read with ranged GETs of their packs, authenticated, decompressed and hashed in
order; its last piece is released only after size and sha256 match, so a destination never
receives a complete-looking file with wrong content. Small one-blob files that sit next to
each other in a pack are fetched together, one ranged read for a run of them, so a label set
of 20,000 files costs a few reads rather than 20,000.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
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
_SMALL = 256 * 1024
# Blobs of one file fetched ahead of the one being hashed and handed on.
_PREFETCH = 3


def _locate(index: PackIndex, bid: str) -> BlobLocation:
    location = index.blobs.get(bid)
    if location is None:
        raise ChunkCorrupt(bid, "missing: no pack index lists it")
    return location


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

    def _fetch(self, bid: str) -> bytes:
        return blob_get(self.store, self.base, self.keys, bid, _locate(self.index, bid))

    def _pieces(self, entry: FileEntry) -> Iterator[bytes]:
        """The file's plaintext blob by blob, the next few fetched (and opened) ahead, so one
        big file is not restored one request at a time; the last piece only once the whole
        file's size and sha256 match."""
        digest = hashlib.sha256()
        size = 0
        pending: bytes | None = None
        ahead: deque[Future[bytes]] = deque()
        following = 0
        try:
            for _ in entry.chunks:
                if self.failed.is_set():
                    raise _Cancelled
                while following < len(entry.chunks) and len(ahead) <= _PREFETCH:
                    ahead.append(self.prefetcher.submit(self._fetch, entry.chunks[following]))
                    following += 1
                plain = ahead.popleft().result()
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
            for future in ahead:
                future.cancel()

    def restore_file(self, entry: FileEntry, destination: ObjectStore, key: str) -> None:
        stream = FileStream(memoryview(piece) for piece in self._pieces(entry))
        try:
            destination.put(key, cast(BinaryIO, stream))
        finally:
            stream.close()
        self._advance(entry.size)

    def restore_span(self, group: list[FileEntry], destination: ObjectStore, prefix: str) -> None:
        """Small one-blob files lying together in one pack: one ranged read for all."""
        locations = [_locate(self.index, e.chunks[0]) for e in group]
        start = locations[0].offset
        end = max(loc.offset + loc.length for loc in locations)
        span = self.store.get_range(pack_object(self.base, locations[0].pack), start, end - start)
        for entry, loc in zip(group, locations, strict=True):
            if self.failed.is_set():
                raise _Cancelled
            sealed = span[loc.offset - start : loc.offset - start + loc.length]
            plain = open_blob(self.keys, entry.chunks[0], loc, sealed)
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


def _work_items(
    entries: list[FileEntry], index: PackIndex
) -> list[tuple[int, list[FileEntry] | FileEntry]]:
    """(bytes, item): runs of small one-blob files by pack and offset, and the other files."""
    small: list[tuple[BlobLocation, FileEntry]] = []
    items: list[tuple[int, list[FileEntry] | FileEntry]] = []
    for entry in entries:
        location = index.blobs.get(entry.chunks[0]) if len(entry.chunks) == 1 else None
        if location is not None and entry.size <= _SMALL:
            small.append((location, entry))
        else:
            items.append((entry.size, entry))
    small.sort(key=lambda pair: (pair[0].pack, pair[0].offset))
    group: list[FileEntry] = []
    group_start = 0
    group_pack = ""
    group_end = 0
    for location, entry in small:
        if group and (
            location.pack != group_pack
            or location.offset + location.length - group_start > _SPAN
            # Other files' blobs in between would be read too: only across small gaps.
            or location.offset - group_end > _GAP
        ):
            items.append((sum(e.size for e in group), group))
            group = []
        if not group:
            group_pack, group_start = location.pack, location.offset
        group.append(entry)
        group_end = location.offset + location.length
    if group:
        items.append((sum(e.size for e in group), group))
    items.sort(key=lambda item: item[0], reverse=True)
    return items


def restore_packed(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    index: PackIndex,
    entries: list[FileEntry],
    destination: ObjectStore,
    destination_prefix: str,
    *,
    threads: int,
    progress: ProgressCallback | None,
) -> int:
    """Restore `entries` (paths already checked); returns the bytes restored."""
    prefetcher = ThreadPoolExecutor(threads, thread_name_prefix="restore-prefetch")
    restorer = PackedRestorer(
        store, base, keys, index, progress, sum(e.size for e in entries), prefetcher
    )
    queue = deque(_work_items(entries, index))
    lock = threading.Lock()

    def work(smallest: bool) -> None:
        try:
            while not restorer.failed.is_set():
                with lock:
                    if not queue:
                        return
                    _, item = queue.pop() if smallest else queue.popleft()
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
        futures = [pool.submit(work, i % 2 == 1) for i in range(threads)]
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
