"""The state one format-2 backup's threads share: readers seal new blobs into open packs, and
uploaders store full packs (then their indexes) on the targets that lack them. At most a few
packs wait for upload, so memory stays bounded whatever the file sizes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, cast

from backups.engine.backup import ProgressCallback, RunState
from backups.engine.chunker import MIN_SIZE, Chunker
from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.filestream import PrefixedStream
from backups.engine.manifest import FileEntry
from backups.engine.packs import BlobTable, PackContents, seal_blob, store_pack
from backups.engine.repository import Target
from backups.storage import ObjectInfo, ObjectStore, read_full

# Full packs waiting for (or in) upload: each holds up to a pack's worth of sealed bytes. Three
# keep the uploads busy (the bench's full backup runs at 1.5 x a raw parallel put) at 16 MiB
# less memory than four.
_PACKS_IN_FLIGHT = 3
# A file's new blobs enter the shared open pack in runs of about this many sealed bytes, so
# they lie back to back and a restore reads a run with one ranged GET instead of one per blob:
# readers working in parallel would otherwise interleave their files' blobs in every pack.
# Held per reader: 4 MiB is one ranged GET of a few blobs (moto: ~17 ms, against ~13 ms for
# one 1 MiB blob), at half the memory of 8.
_RUN_BYTES = 4 * 1024 * 1024
# A pack also closes at this many blobs: 16 MiB of tiny files would be ~300,000 blobs, whose
# index entries (kept until the pack is stored) would grow with the dataset instead. 32,768
# keeps a 20,000-file label set in one pack.
_PACK_BLOBS = 32768


class Cancelled(Exception):
    """A worker noticed that another one failed and stopped early."""


# (blob id, sealed bytes, plaintext length, compressed)
_Sealed = tuple[str, bytes, int, bool]


class _BlobRun:
    """One file's sealed blobs, for the same targets, not yet in a pack."""

    def __init__(self) -> None:
        self.needs: tuple[int, ...] = ()
        self.blobs: list[_Sealed] = []
        self.size = 0


class PackedRun(RunState):
    """State shared by the readers and uploaders of one format-2 backup."""

    def __init__(
        self,
        keys: DatasetKeys,
        targets: Sequence[Target],
        present: list[BlobTable],
        *,
        pack_size: int,
        level: int,
        uploaders: ThreadPoolExecutor,
        progress: ProgressCallback | None,
        bytes_total: int,
    ) -> None:
        super().__init__(progress, bytes_total)
        self.keys = keys
        self.targets = targets
        self.present = present
        self.pack_size = pack_size
        self.level = level
        self.uploaders = uploaders
        self.chunker = Chunker(keys.chunker_seed)
        self.scheduled: set[str] = set()
        # One open pack per kind (file data, or file lists) and set of targets that need its
        # blobs (normally just one set: all). File lists get packs of their own, so damage to
        # a data pack loses those files, never the list of what a snapshot holds.
        self.open_packs: dict[tuple[str, tuple[int, ...]], PackContents] = {}
        # Full packs handed to the uploaders and not yet stored; readers wait for room before
        # adding more (see _append), so no reader sits on a full pack of its own meanwhile.
        self.outstanding = 0
        self.room = threading.Condition(self.lock)
        self.bytes_stored = 0

    def read_file(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry:
        digest = hashlib.sha256()
        ids: list[str] = []
        size = 0
        with source.open(info.key) as stream:
            if info.size < MIN_SIZE:
                # Below the minimum a file is one chunk whatever its content: no chunker needed.
                whole = read_full(stream, MIN_SIZE)
                pieces = iter([whole] if whole else []) if len(whole) < MIN_SIZE else None
                if pieces is None:  # the file grew since it was listed: chunk it after all
                    pieces = self.chunker.chunks(cast(BinaryIO, PrefixedStream(whole, stream)))
            else:
                pieces = self.chunker.chunks(stream)
            run = _BlobRun()
            for data in pieces:
                if self.failed.is_set():
                    raise Cancelled
                digest.update(data)
                bid = chunk_id(self.keys, data)
                ids.append(bid)
                size += len(data)
                self.add(bid, data, run=run)
            self.end_run(run)
        with self.lock:
            self.stats.files_read += 1
            self.stats.bytes_read += size
        return FileEntry(path, size, info.mtime, info.etag, digest.hexdigest(), tuple(ids))

    def add(self, bid: str, data: bytes, kind: str = "data", run: _BlobRun | None = None) -> None:
        """Seal a blob some target lacks and put it in the open pack of the targets that need
        it, or first in `run` (one file's blobs, appended together)."""
        with self.lock:
            needs = tuple(i for i, have in enumerate(self.present) if bid not in have)
            fresh = bool(needs) and bid not in self.scheduled
            if fresh:
                self.scheduled.add(bid)
            else:
                self.stats.chunks_deduplicated += 1
        if not fresh:
            if kind == "data":
                self.advance(len(data))  # already stored: done now
            return
        sealed, compressed = seal_blob(self.keys, bid, data, self.level)
        blob = (bid, sealed, len(data), compressed)
        if run is None:
            self._append(kind, needs, [blob])
            return
        if run.blobs and run.needs != needs:
            self.end_run(run)
        run.needs = needs
        run.blobs.append(blob)
        run.size += len(sealed)
        if run.size >= _RUN_BYTES:
            self.end_run(run)

    def stored_everywhere(self, bid: str) -> bool:
        with self.lock:
            return all(bid in have for have in self.present)

    def count_reused(self) -> None:
        with self.lock:
            self.stats.chunks_deduplicated += 1

    def end_run(self, run: _BlobRun) -> None:
        if run.blobs:
            self._append("data", run.needs, run.blobs)
        run.blobs = []
        run.size = 0

    def _append(self, kind: str, needs: tuple[int, ...], blobs: list[_Sealed]) -> None:
        # All under one hold of the lock: the blobs lie back to back (a pack that fills up
        # midway is sent, and the rest starts the next one). Back-pressure first: while enough
        # full packs are on their way, readers wait here, holding at most their current run.
        full = []
        with self.room:
            while self.outstanding >= _PACKS_IN_FLIGHT:
                if self.failed.is_set():
                    raise Cancelled
                self.room.wait(timeout=0.5)
            for bid, sealed, raw_length, compressed in blobs:
                pack = self.open_packs.setdefault((kind, needs), PackContents.empty())
                pack.add(bid, sealed, raw_length, compressed)
                self.stats.chunks_uploaded += 1
                self.stats.bytes_uploaded += raw_length
                if pack.size >= self.pack_size or len(pack.entries) >= _PACK_BLOBS:
                    full.append(self.open_packs.pop((kind, needs)))
                    self.outstanding += 1
        for pack in full:
            self.uploaders.submit(self._upload, kind, needs, pack)

    def _upload(self, kind: str, needs: tuple[int, ...], pack: PackContents) -> None:
        try:
            if self.failed.is_set():
                return
            for index in needs:
                target = self.targets[index]
                _, blobs = store_pack(target.store, target.base, self.keys, pack, kind=kind)
                with self.lock:
                    self.present[index].update(blobs)
                    self.bytes_stored += pack.size
            with self.lock:
                # Stored wherever needed: `present` answers for these now, and the set of
                # scheduled blobs holds only what is on its way, not every blob of the run.
                self.scheduled.difference_update(entry[0] for entry in pack.entries)
            if kind == "data":
                # Progress counts what is stored on every target that needs it, not what is read.
                self.advance(sum(entry[3] for entry in pack.entries))
        except BaseException as exc:
            self.fail(exc)
        finally:
            with self.room:
                self.outstanding -= 1
                self.room.notify_all()

    def flush(self) -> None:
        """Send the packs still open (the last, partly filled ones)."""
        with self.room:
            remaining = [(key, pack) for key, pack in self.open_packs.items() if pack.entries]
            self.open_packs.clear()
            self.outstanding += len(remaining)
        for (kind, needs), pack in remaining:
            self.uploaders.submit(self._upload, kind, needs, pack)

    def read_task(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry | None:
        try:
            return self.read_file(source, info, path)
        except Cancelled:
            return None
        except BaseException as exc:
            self.fail(exc)
            return None
