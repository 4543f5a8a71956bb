"""Snapshot manifests: what a snapshot contains, and how it is serialized and sealed.

A manifest lists every file of the snapshot with its size, mtime, etag, sha256 and chunk ids.
It is JSON, zlib-compressed, then encrypted with the dataset's manifest key (AAD = its id).
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backups.engine.crypto import DatasetKeys, decrypt_manifest, encrypt_manifest
from backups.engine.errors import ManifestCorrupt

# Format 1: fixed-size chunks, one object each (read, never written). Format 2: content-
# defined chunks, compressed, in packs (backups.engine.packs); its entries name blob ids.
FORMAT_VERSION = 2
FORMATS = (1, 2)
# Sortable, second-and-microsecond precise, and safe in any object store key.
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# A manifest decompressing beyond this is refused rather than exhausting memory.
_MAX_MANIFEST_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a snapshot. `path` is relative to the backed-up prefix, '/'-separated."""

    path: str
    size: int
    mtime: datetime
    etag: str
    sha256: str
    chunks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    created: datetime
    source_prefix: str
    chunk_size: int
    parent_id: str | None
    files: tuple[FileEntry, ...]
    format: int = FORMAT_VERSION
    # Format 2: the file list is stored as blobs (segments, see backups.engine.segments); the
    # manifest object names them. Empty for format 1 and for a manifest listing no file.
    segments: tuple[str, ...] = ()
    # How many entries each segment holds, so the next backup can name an unchanged run of
    # entries by its segment id without serializing it again. Empty when not recorded.
    segment_sizes: tuple[int, ...] = ()
    # A format-2 manifest read without its file list (a backup's parent, a restore: they stream
    # the segments instead of holding every entry) has `files` empty and these set from what
    # the manifest recorded when it was written. None when the files are loaded.
    listed_files: int | None = None
    listed_bytes: int | None = None

    @property
    def files_loaded(self) -> bool:
        return self.listed_files is None

    @property
    def file_count(self) -> int:
        return len(self.files) if self.listed_files is None else self.listed_files

    @property
    def total_size(self) -> int:
        """Bytes of all files; for a manifest read without its file list, what it recorded
        (-1 when it predates that record)."""
        if self.listed_files is not None:
            return -1 if self.listed_bytes is None else self.listed_bytes
        return sum(entry.size for entry in self.files)

    def chunk_ids(self) -> set[str]:
        """Every chunk (or blob) this snapshot needs, its file list's segments included: what
        garbage collection must never delete."""
        if not self.files_loaded:
            raise ValueError(f"manifest {self.id} was read without its file list")
        return {cid for entry in self.files for cid in entry.chunks} | set(self.segments)


def new_manifest_id(now: datetime) -> str:
    """`<UTC time>-<uuid4>`: listing order is time order, and ids never collide."""
    if now.tzinfo is None:
        raise ValueError("snapshot time must be timezone-aware")
    return f"{now.astimezone(UTC).strftime(_TIME_FORMAT)}-{uuid.uuid4()}"


def manifest_time(manifest_id: str) -> datetime:
    """The creation time encoded in a manifest id (readable without decrypting)."""
    stamp = manifest_id.split("-", 1)[0]
    try:
        return datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ManifestCorrupt(manifest_id, "id does not start with a snapshot time") from None


def entry_doc(e: FileEntry) -> dict[str, Any]:
    return {
        "path": e.path,
        "size": e.size,
        "mtime": e.mtime.isoformat(),
        "etag": e.etag,
        "sha256": e.sha256,
        "chunks": list(e.chunks),
    }


def entry_from_doc(f: dict[str, Any]) -> FileEntry:
    """One file entry; raises ValueError, KeyError or TypeError when it does not parse."""
    return FileEntry(
        path=str(f["path"]),
        size=int(f["size"]),
        mtime=datetime.fromisoformat(f["mtime"]),
        etag=str(f["etag"]),
        sha256=str(f["sha256"]),
        chunks=tuple(str(c) for c in f["chunks"]),
    )


def seal_manifest(keys: DatasetKeys, manifest: Manifest) -> bytes:
    doc: dict[str, Any] = {
        "format": manifest.format,
        "id": manifest.id,
        "created": manifest.created.isoformat(),
        "source_prefix": manifest.source_prefix,
        "chunk_size": manifest.chunk_size,
        "parent": manifest.parent_id,
    }
    if manifest.segments:
        doc["segments"] = list(manifest.segments)
        doc["file_count"] = manifest.file_count
        doc["bytes"] = manifest.total_size
        if manifest.segment_sizes:
            doc["segment_sizes"] = list(manifest.segment_sizes)
    else:
        doc["files"] = [entry_doc(e) for e in manifest.files]
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return encrypt_manifest(keys, manifest.id, zlib.compress(raw, 6))


def open_manifest(keys: DatasetKeys, manifest_id: str, sealed: bytes) -> Manifest:
    """Decrypt and parse a manifest; raises ManifestCorrupt if anything does not add up."""
    compressed = decrypt_manifest(keys, manifest_id, sealed)
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, _MAX_MANIFEST_BYTES)
        if inflater.unconsumed_tail:
            raise ManifestCorrupt(manifest_id, "manifest is implausibly large")
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("format") not in FORMATS or doc.get("id") != manifest_id:
            raise ManifestCorrupt(manifest_id, "unknown format or id mismatch")
        files = tuple(entry_from_doc(f) for f in doc.get("files", ()))
        segments = tuple(str(sid) for sid in doc.get("segments", ()))
        sizes = tuple(int(n) for n in doc.get("segment_sizes", ()))
        listed = int(doc.get("file_count", 0)) if segments else None
        listed_bytes = doc.get("bytes") if segments else None
        return Manifest(
            id=manifest_id,
            created=datetime.fromisoformat(doc["created"]),
            source_prefix=str(doc["source_prefix"]),
            chunk_size=int(doc["chunk_size"]),
            parent_id=doc.get("parent"),
            files=files,
            format=int(doc["format"]),
            segments=segments,
            # Only a count per segment is usable; anything else is ignored, not trusted.
            segment_sizes=sizes if len(sizes) == len(segments) else (),
            listed_files=listed,
            listed_bytes=listed_bytes
            if isinstance(listed_bytes, int) and listed_bytes >= 0
            else None,
        )
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise ManifestCorrupt(manifest_id, f"does not parse ({type(exc).__name__})") from None
