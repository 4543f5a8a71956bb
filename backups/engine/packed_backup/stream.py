"""One pass over the source listing, in path order: files the parent snapshot holds unchanged
go straight into the new file list, the others through reader threads; the list is cut into
segments as entries come. Nothing held grows with the file count: a bounded window of listed
files, the parent's segments around it, and one segment being built."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

from backups.engine.crypto import DatasetKeys
from backups.engine.manifest import FileEntry, Manifest
from backups.engine.packed_backup.run import Cancelled, PackedRun
from backups.engine.packs import BlobTable, PackIndex
from backups.engine.repository import Target
from backups.engine.segments import FileListWriter, ParentList, iter_segments, segment_entries
from backups.storage import ObjectInfo, ObjectStore


class OutOfOrder(Exception):
    """The source listed a key at or before the previous one."""


class _Slot:
    """One listed file on its way into the file list: reused from the parent, or read."""

    __slots__ = ("done", "entry", "info", "path")

    def __init__(self, path: str, info: ObjectInfo) -> None:
        self.path = path
        self.info = info
        self.entry: FileEntry | None = None
        self.done = False


# Files listed ahead of the file list: the readers work on any of them, while the list takes
# them in order. Bounded, so memory does not grow with the dataset (a slot with its listing
# is a few hundred bytes); wide enough that a long file at the head keeps no reader idle.
_WINDOW = 8192
# A reader's batch: at most this many files, and only one once they reach this many bytes (a
# big file is read alone, so a few big files still spread over every reader).
_BATCH_FILES = 64
_BATCH_BYTES = 1024 * 1024
# Readers hash, compress and seal (CPU work that releases the GIL); more of them than this adds
# memory (a chunking window each) rather than speed. Uploads use every thread asked for.
MAX_READERS = 5


def _unchanged(entry: FileEntry, info: ObjectInfo, present: list[BlobTable]) -> bool:
    return (
        entry.size == info.size
        and entry.mtime == info.mtime
        and entry.etag == info.etag
        and all(bid in have for have in present for bid in entry.chunks)
    )


def stream(
    run: PackedRun,
    source: ObjectStore,
    items: Iterable[tuple[str, ObjectInfo]],
    parent: ParentList,
    writer: FileListWriter,
    readers: int,
    estimate: int,
) -> None:
    """Walk the listing once, in path order: a file the parent holds unchanged goes straight
    to the file list, any other is read by one of `readers` threads; the list takes entries in
    order as they are ready. Nothing here grows with the file count.

    Files go to the readers in batches (up to _BATCH_FILES, or one big file), and counters
    are published per batch: per-file hand-offs between threads cost more than reading a
    small file does."""
    work: queue.SimpleQueue[list[_Slot] | None] = queue.SimpleQueue()
    ready = threading.Condition()

    def reader() -> None:
        while (batch := work.get()) is not None:
            for slot in batch:
                if not run.failed.is_set():
                    slot.entry = run.read_task(source, slot.info, slot.path)
            with ready:
                for slot in batch:
                    slot.done = True
                ready.notify_all()

    window: deque[_Slot] = deque()
    batch: list[_Slot] = []
    batch_bytes = 0

    def send() -> None:
        nonlocal batch, batch_bytes
        if batch:
            work.put(batch)
            batch, batch_bytes = [], 0

    def emit(keep: int) -> None:
        """Hand the finished head of the window to the file list, waiting for files until at
        most `keep` are left."""
        while window and (window[0].done or len(window) > keep):
            head = window[0]
            if not head.done:
                send()  # the head may be in the batch being gathered
                with ready:
                    while not head.done:
                        ready.wait()
            window.popleft()
            if head.entry is None:
                raise Cancelled  # its reader failed: run.error says why
            writer.add(head.entry)

    pool = [
        threading.Thread(target=reader, name=f"backup-read-{i}", daemon=True)
        for i in range(readers)
    ]
    for thread in pool:
        thread.start()
    previous: str | None = None
    seen = seen_bytes = reused = reused_bytes = 0

    def publish() -> None:
        nonlocal seen, seen_bytes, reused, reused_bytes
        with run.lock:
            run.stats.files_seen += seen
            run.stats.bytes_seen += seen_bytes
            run.stats.files_reused += reused
            run.bytes_total = max(estimate, run.stats.bytes_seen)
        if reused_bytes:
            run.advance(reused_bytes)
        seen = seen_bytes = reused = reused_bytes = 0

    finished = False
    try:
        for path, info in items:
            if previous is not None and path <= previous:
                raise OutOfOrder(path)
            previous = path
            seen += 1
            seen_bytes += info.size
            slot = _Slot(path, info)
            old = parent.lookup(path)
            if old is not None and _unchanged(old, info, run.present):
                slot.entry, slot.done = old, True
                reused += 1
                reused_bytes += old.size
            else:
                batch.append(slot)
                batch_bytes += info.size
                if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
                    send()
            window.append(slot)
            if seen >= _BATCH_FILES:
                publish()
            # Once the window is full, take it down to half before listing on: waiting for
            # one file at a time would wake this thread (and hand over the GIL) per file.
            emit(keep=_WINDOW // 2 if len(window) >= _WINDOW else _WINDOW)
            if run.failed.is_set():
                raise Cancelled
        send()
        publish()
        with run.lock:
            run.bytes_total = run.stats.bytes_seen  # the listing is complete: exact from here
        emit(keep=0)
        finished = True
    finally:
        if not finished:
            run.failed.set()  # readers skip what is left in the queue
        for _ in pool:
            work.put(None)
        for thread in pool:
            thread.join()


def parent_list(
    parent: Manifest | None, repos: Sequence[Target], loaded: Sequence[PackIndex], keys: DatasetKeys
) -> ParentList:
    """The parent's file list as a forward cursor: each segment is read, when reached, from a
    target whose index lists it."""
    if parent is None or parent.format != 2:
        return ParentList.empty()
    if parent.files_loaded or not parent.segments:
        return ParentList(iter_segments(repos[0].store, repos[0].base, keys, parent, loaded[0]))

    def segments() -> Iterator[tuple[str, Sequence[FileEntry]]]:
        for sid in parent.segments:
            at = next((i for i, index in enumerate(loaded) if sid in index.blobs), 0)
            repo = repos[at]
            yield sid, segment_entries(repo.store, repo.base, keys, parent.id, sid, loaded[at])

    return ParentList(segments())
