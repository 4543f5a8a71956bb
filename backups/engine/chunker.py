"""Content-defined chunk boundaries (FastCDC), keyed per dataset.

An insertion moves only the boundaries around it, so a line added at the top of a 35 MB export
costs one or two new chunks instead of every chunk after it. The gear table is seeded from the
dataset key: the same content cuts differently in every dataset, so chunk sizes seen on a
target do not fingerprint a known file across datasets.

Sizes (512 KiB minimum, about 1 MiB average, 8 MiB maximum) follow restic's: after a one-line
edit the changed chunk is what a backup adds, so a smaller average adds less per edit, while
every chunk costs an index entry and, on restore of a large file, one ranged read. The bench's
format-2 section measures the edit cost against restic's on the same data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from backups.storage.base import readinto_of

try:
    # The Cython build, never the pure-Python fallback `pyfastcdc` would load silently
    # (it is two orders of magnitude slower: a backup would crawl, not fail).
    from pyfastcdc.cy import FastCDC
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "pyfastcdc's compiled extension does not load; reinstall pyfastcdc (a wheel for this "
        "platform) rather than run backups with the pure-Python chunker"
    ) from exc

KIB = 1024
MIN_SIZE = 512 * KIB
# pyfastcdc's average is avg_size + min_size (cut-point skipping): 512 KiB + 512 KiB = 1 MiB.
AVG_PARAMETER = 512 * KIB
MAX_SIZE = 8 * 1024 * KIB
AVERAGE_SIZE = MIN_SIZE + AVG_PARAMETER
# The streaming window: a whole maximum-size chunk plus room to read ahead.
_WINDOW = MAX_SIZE + 2 * 1024 * KIB


class Chunker:
    """Cuts streams at content-defined boundaries under one dataset's seed; thread-safe (each
    thread gets its own FastCDC, which is not)."""

    def __init__(self, seed: int) -> None:
        if not 0 <= seed < 2**63:
            raise ValueError("the chunker seed is a 63-bit unsigned integer")
        self._seed = seed
        self._local = threading.local()

    def _cdc(self) -> FastCDC:
        cdc = getattr(self._local, "cdc", None)
        if cdc is None:
            cdc = FastCDC(
                AVG_PARAMETER,
                min_size=MIN_SIZE,
                max_size=MAX_SIZE,
                normalized_chunking=1,
                # 0 would select the unkeyed reference table; a derived seed is never 0 in
                # practice, and `| 1` makes sure of it.
                seed=self._seed | 1,
            )
            self._local.cdc = cdc
        return cdc

    def _buffer(self) -> bytearray:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(_WINDOW)
        return buffer

    def chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        """The stream's content in chunks, cut exactly as `split` would cut it whole.

        pyfastcdc's own `cut_stream` allocates a buffer of twice the maximum chunk size for
        every stream; glibc's per-thread arenas then keep those 16 MiB blocks, and a backup's
        RSS grows with the file count. Instead each thread reuses one window: cut what is in it,
        keep the last (possibly unfinished) chunk, refill behind it. A chunk's cut point depends
        only on the bytes from its start, and the window always holds a whole maximum-size
        chunk from there (or the end of the stream), so the cuts are the same.
        """
        buffer = self._buffer()
        view = memoryview(buffer)
        readinto = readinto_of(stream)
        filled = 0
        eof = False
        while not eof or filled:
            while not eof and filled < len(buffer):
                if readinto is not None:
                    n = readinto(view[filled:])
                else:
                    piece = stream.read(len(buffer) - filled)
                    n = len(piece)
                    view[filled : filled + n] = piece
                if not n:
                    eof = True
                filled += n
            consumed = 0
            for chunk in self._cdc().cut_buf(view[:filled]):
                end = chunk.offset + chunk.length
                if end == filled and not eof:
                    break  # may be cut short by the window: cut again once refilled
                yield bytes(view[chunk.offset : end])
                consumed = end
            view[: filled - consumed] = view[consumed:filled]
            filled -= consumed

    def split(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """A buffer already in memory, in the same chunks `chunks` would give."""
        view = memoryview(data)
        for chunk in self._cdc().cut_buf(view):
            yield bytes(view[chunk.offset : chunk.offset + chunk.length])
