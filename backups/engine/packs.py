"""Format 2 storage: blobs (compressed, then encrypted chunks) packed into pack objects.

```
<base>/data/<pack id>    sealed blobs back to back; the id is the sha256 of the pack's bytes
<base>/index/<pack id>   the pack's encrypted index: per blob its id, offset, sealed length,
                         plaintext length and whether it is zstd-compressed
```

A pack counts only once its index exists, and the index is written after the pack: a pack
whose upload was cut off is never referenced, and a run that crashed after some packs were
complete reuses them, because their indexes say what they hold. Garbage collection removes
index-less packs once they are old enough that no running backup can still be writing them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import zstandard

from backups.engine.crypto import (
    OVERHEAD,
    DatasetKeys,
    decrypt_chunk,
    decrypt_index,
    encrypt_chunk,
    encrypt_index,
)
from backups.engine.errors import ChunkCorrupt
from backups.storage import ObjectStore, join_key

DATA_DIR = "data"
INDEX_DIR = "index"
DEFAULT_PACK_SIZE = 16 * 1024 * 1024
DEFAULT_COMPRESSION_LEVEL = 3
# What a pack holds: file content, or a snapshot's file list (segments).
DATA_PACK = "data"
LIST_PACK = "list"
# A blob's plaintext never exceeds the chunker's maximum; a decompressed size above this is
# refused rather than allocated (a corrupt or hostile index cannot exhaust memory).
MAX_BLOB_SIZE = 16 * 1024 * 1024
_INDEX_LOAD_THREADS = 8


class BlobLocation(NamedTuple):
    pack: str
    offset: int
    length: int  # sealed bytes in the pack
    raw_length: int  # plaintext bytes
    compressed: bool


def data_prefix(base: str) -> str:
    return join_key(base, DATA_DIR) + "/"


def index_prefix(base: str) -> str:
    return join_key(base, INDEX_DIR) + "/"


def pack_object(base: str, pack_id: str) -> str:
    return join_key(base, f"{DATA_DIR}/{pack_id}")


def index_object(base: str, pack_id: str) -> str:
    return join_key(base, f"{INDEX_DIR}/{pack_id}")


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # zstandard's (de)compressors are not thread-safe: one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("compressors", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    found = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def seal_blob(keys: DatasetKeys, blob_id: str, plaintext: bytes, level: int) -> tuple[bytes, bool]:
    """Compress (kept only when it shrinks the chunk), then encrypt: (sealed, compressed)."""
    packed = _compressor(level).compress(plaintext) if level > 0 else plaintext
    compressed = len(packed) < len(plaintext)
    return bytes(encrypt_chunk(keys, blob_id, packed if compressed else plaintext)), compressed


def open_blob(keys: DatasetKeys, blob_id: str, location: BlobLocation, sealed: bytes) -> bytes:
    """Authenticate, decrypt and decompress one blob; ChunkCorrupt when anything is off."""
    if len(sealed) != location.length:
        raise ChunkCorrupt(blob_id, "truncated in its pack")
    payload = decrypt_chunk(keys, blob_id, sealed)
    if not location.compressed:
        plain = payload
    else:
        if location.raw_length > MAX_BLOB_SIZE:
            raise ChunkCorrupt(blob_id, "implausibly large")
        try:
            plain = _decompressor().decompress(payload, max_output_size=location.raw_length)
        except zstandard.ZstdError:
            raise ChunkCorrupt(blob_id, "does not decompress") from None
    if len(plain) != location.raw_length:
        raise ChunkCorrupt(blob_id, "decompresses to the wrong size")
    return plain


@dataclass
class PackContents:
    """A pack being filled: its sealed blobs and their index entries."""

    parts: list[bytes]
    entries: list[tuple[str, int, int, int, bool]]
    size: int = 0

    @classmethod
    def empty(cls) -> PackContents:
        return cls([], [])

    def joined(self) -> bytes:
        """The pack's bytes; the parts are dropped once joined (one copy in memory, not two)."""
        if len(self.parts) != 1:
            self.parts[:] = [b"".join(self.parts)]
        return self.parts[0]

    def add(self, blob_id: str, sealed: bytes, raw_length: int, compressed: bool) -> None:
        self.entries.append((blob_id, self.size, len(sealed), raw_length, compressed))
        self.parts.append(sealed)
        self.size += len(sealed)


def _index_bytes(entries: Iterable[tuple[str, int, int, int, bool]], kind: str) -> bytes:
    doc = {"format": 2, "kind": kind, "blobs": [[b, o, n, r, int(c)] for b, o, n, r, c in entries]}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return _compressor(DEFAULT_COMPRESSION_LEVEL).compress(raw)


def store_pack(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    contents: PackContents,
    *,
    kind: str = DATA_PACK,
) -> tuple[str, dict[str, BlobLocation]]:
    """Write the pack, then its index (what makes the pack count); returns its id and blobs.

    Only file content may go to the store's cold class: a backup reads the file list of its
    parent and every index on each run, so those stay where reads are instant and free."""
    data = contents.joined()
    pack_id = hashlib.sha256(data).hexdigest()
    store.put(pack_object(base, pack_id), data, cold=kind == DATA_PACK)
    store.put(
        index_object(base, pack_id),
        encrypt_index(keys, pack_id, _index_bytes(contents.entries, kind)),
    )
    return pack_id, {b: BlobLocation(pack_id, o, n, r, c) for b, o, n, r, c in contents.entries}


_BITS32 = (1 << 32) - 1
_BITS40 = (1 << 40) - 1


class BlobTable(MutableMapping[str, BlobLocation]):
    """Blob id -> location, compact: a backup or restore holds one entry per blob of the
    repository (200,000 small files are 200,000 blobs), so each is a 32-byte key and one
    integer packing the location, about 150 bytes in all instead of 330 for a dict of strings
    and tuples. Ids are hex strings outside (what every caller uses), bytes inside."""

    def __init__(self) -> None:
        self._table: dict[bytes, int] = {}
        self._packs: list[str] = []
        self._pack_numbers: dict[str, int] = {}

    @staticmethod
    def _key(blob_id: str) -> bytes | None:
        try:
            return bytes.fromhex(blob_id) if len(blob_id) == 64 else None
        except (ValueError, TypeError):
            return None

    def _pack(self, location: BlobLocation) -> int:
        if location.offset > _BITS40 or max(location.length, location.raw_length) > _BITS32:
            raise ValueError("blob location out of range")
        number = self._pack_numbers.get(location.pack)
        if number is None:
            number = self._pack_numbers[location.pack] = len(self._packs)
            self._packs.append(location.pack)
        return (
            number
            | location.offset << 32
            | location.length << 72
            | location.raw_length << 104
            | int(location.compressed) << 136
        )

    def _unpack(self, value: int) -> BlobLocation:
        return BlobLocation(
            self._packs[value & _BITS32],
            (value >> 32) & _BITS40,
            (value >> 72) & _BITS32,
            (value >> 104) & _BITS32,
            bool(value >> 136),
        )

    def __getitem__(self, blob_id: str) -> BlobLocation:
        key = self._key(blob_id)
        if key is None or key not in self._table:
            raise KeyError(blob_id)
        return self._unpack(self._table[key])

    def __contains__(self, blob_id: object) -> bool:
        key = self._key(blob_id) if isinstance(blob_id, str) else None
        return key is not None and key in self._table

    def __setitem__(self, blob_id: str, location: BlobLocation) -> None:
        key = self._key(blob_id)
        if key is None:
            raise ValueError(f"not a blob id: {blob_id!r}")
        self._table[key] = self._pack(location)

    def __delitem__(self, blob_id: str) -> None:
        key = self._key(blob_id)
        if key is None or key not in self._table:
            raise KeyError(blob_id)
        del self._table[key]

    def __iter__(self) -> Iterator[str]:
        return (key.hex() for key in self._table)

    def __len__(self) -> int:
        return len(self._table)


class PackIndex(NamedTuple):
    """What one target's indexes say: blob -> where, pack -> its blobs, and the indexes that
    did not open (their packs' blobs count as absent). `partial`: read without `packs` (see
    load_pack_index), which garbage collection and verify refuse."""

    blobs: BlobTable
    packs: dict[str, list[tuple[str, BlobLocation]]]
    unreadable: list[str]
    kinds: dict[str, str]  # pack -> DATA_PACK or LIST_PACK
    partial: bool = False


def _index_plaintext(keys: DatasetKeys, pack_id: str, sealed: bytes) -> bytes | None:
    """An index's JSON, decrypted and decompressed; None when it does not open."""
    plaintext = decrypt_index(keys, pack_id, sealed)
    if plaintext is None:
        return None
    try:
        return bytes(_decompressor().decompress(plaintext, max_output_size=1 << 30))
    except zstandard.ZstdError:
        return None


def _index_rows(pack_id: str, raw: bytes) -> tuple[str, list[tuple[str, BlobLocation]]] | None:
    """(kind, rows) of an index's JSON; None when it does not parse."""
    try:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("format") != 2:
            return None
        return str(doc.get("kind", DATA_PACK)), [
            (str(b), BlobLocation(pack_id, int(o), int(n), int(r), bool(c)))
            for b, o, n, r, c in doc["blobs"]
        ]
    except (ValueError, KeyError, TypeError):
        return None


def _parse_index(
    keys: DatasetKeys, pack_id: str, sealed: bytes
) -> tuple[str, list[tuple[str, BlobLocation]]] | None:
    raw = _index_plaintext(keys, pack_id, sealed)
    return _index_rows(pack_id, raw) if raw is not None else None


def load_pack_index(
    store: ObjectStore, base: str, keys: DatasetKeys, *, packs: bool = True
) -> PackIndex:
    """Read every index of the repository (in parallel: one small GET per pack). `packs=False`
    keeps only blob -> location (what a backup or restore needs), not each pack's list too.

    The fetch threads only download, decrypt and decompress; indexes are parsed here one at a
    time, so the load's peak is the table plus one index's rows, not every index's at once."""
    prefix = index_prefix(base)
    ids = [
        info.key[len(prefix) :] for info in store.list(prefix) if "/" not in info.key[len(prefix) :]
    ]

    def fetch(pack_id: str) -> tuple[str, bytes | None]:
        return pack_id, _index_plaintext(keys, pack_id, store.get(index_object(base, pack_id)))

    index = PackIndex(BlobTable(), {}, [], {}, partial=not packs)
    if not ids:
        return index
    table = index.blobs
    with ThreadPoolExecutor(min(_INDEX_LOAD_THREADS, len(ids)), thread_name_prefix="index") as pool:
        for pack_id, raw in pool.map(fetch, ids):
            parsed = _index_rows(pack_id, raw) if raw is not None else None
            if parsed is None:
                index.unreadable.append(pack_id)
                continue
            index.kinds[pack_id], blobs = parsed
            if packs:
                index.packs[pack_id] = blobs
            for blob_id, location in blobs:
                # A blob in two packs (a repack interrupted before the old pack went): either
                # copy serves; the first one listed is kept.
                if blob_id not in table:
                    table[blob_id] = location
    return index


def blob_get(
    store: ObjectStore, base: str, keys: DatasetKeys, blob_id: str, location: BlobLocation
) -> bytes:
    """Fetch one blob with a ranged read of its pack, and open it."""
    sealed = store.get_range(pack_object(base, location.pack), location.offset, location.length)
    return open_blob(keys, blob_id, location, sealed)


def sealed_size(raw_length: int) -> int:
    """What an uncompressed blob of this size occupies in a pack."""
    return raw_length + OVERHEAD


def pack_opens(store: ObjectStore, base: str, data_key: bytes, pack_id: str) -> bool:
    """Whether a pack's index and first blob open with this key (deletion proves they do not)."""
    keys = DatasetKeys.from_data_key(data_key)
    parsed = _parse_index(keys, pack_id, store.get(index_object(base, pack_id)))
    if parsed is None or not parsed[1]:
        return False
    bid, location = parsed[1][0]
    try:
        blob_get(store, base, keys, bid, location)
    except ChunkCorrupt:
        return False
    return True
