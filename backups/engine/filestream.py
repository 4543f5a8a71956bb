"""Streams the engine builds: a restored file's verified plaintext, for the destination store's
`put`; a source file whose first bytes were already read, for the chunker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO


class FileStream:
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


class PrefixedStream:
    """A stream whose first bytes were already read: those, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if len(self._head):
            n = len(self._head) if size < 0 else min(size, len(self._head))
            piece = bytes(self._head[:n])
            self._head = self._head[n:]
            return piece
        return self._rest.read(size)
