"""Check that a snapshot is restorable without restoring it.

Every referenced chunk must exist with the size its plaintext implies (one listing, cheap);
a chosen fraction of them is also downloaded, authenticated and re-hashed (like restic's
`check --read-data-subset`).
"""

from __future__ import annotations

import hmac
import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backups.engine.crypto import OVERHEAD, DatasetKeys, chunk_id, decrypt_chunk
from backups.engine.errors import ChunkCorrupt
from backups.engine.packed_restore import verify_packed
from backups.engine.packs import load_pack_index
from backups.engine.repository import _load_manifest, chunk_object, list_chunks
from backups.storage import ObjectNotFound, ObjectStore


@dataclass
class VerifyReport:
    manifest_id: str
    files: int = 0
    chunks_referenced: int = 0
    chunks_read: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    damaged_files: list[str] = field(default_factory=list)
    # Format 2: pack indexes that do not authenticate (their blobs then count as missing).
    unreadable_indexes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def _expected_sizes(chunk_size: int, files: list[tuple[int, tuple[str, ...]]]) -> dict[str, int]:
    # Fixed-size chunking: every chunk but a file's last is chunk_size long.
    sizes: dict[str, int] = {}
    for size, chunks in files:
        for index, cid in enumerate(chunks):
            sizes[cid] = min(chunk_size, size - index * chunk_size)
    return sizes


def verify(
    store: ObjectStore,
    base: str,
    data_key: bytes,
    manifest_id: str,
    *,
    read_data_subset: float = 0.0,
    threads: int = 8,
    seed: int | None = None,
) -> VerifyReport:
    """Report missing and corrupt chunks of one snapshot (never raises for damage found).

    Rule: a chunk is missing if the listing lacks it; corrupt if its stored size is not its
    plaintext size plus encryption overhead, or if (for the sampled fraction) it fails
    authentication or its content does not hash to its id.
    """
    if not 0.0 <= read_data_subset <= 1.0:
        raise ValueError("read_data_subset is a fraction between 0 and 1")
    keys = DatasetKeys.from_data_key(data_key)
    index = load_pack_index(store, base, keys)
    try:
        manifest = _load_manifest(store, base, keys, manifest_id, index)
    except ChunkCorrupt as exc:
        # A format-2 file list segment that does not open: every file is beyond reach.
        return VerifyReport(
            manifest_id, corrupt=[exc.chunk_id], damaged_files=["(the snapshot's file list)"]
        )
    if manifest.format == 2:
        referenced, read, missing, corrupt = verify_packed(
            store,
            base,
            keys,
            index,
            manifest,
            read_data_subset=read_data_subset,
            threads=threads,
            seed=seed,
        )
        report = VerifyReport(
            manifest_id,
            files=len(manifest.files),
            chunks_referenced=referenced,
            chunks_read=read,
            missing=missing,
            corrupt=corrupt,
        )
        report.unreadable_indexes = list(index.unreadable)
        bad = set(missing) | set(corrupt)
        report.damaged_files = [e.path for e in manifest.files if bad.intersection(e.chunks)]
        return report
    expected = _expected_sizes(manifest.chunk_size, [(e.size, e.chunks) for e in manifest.files])
    stored = list_chunks(store, base)
    report = VerifyReport(manifest_id, files=len(manifest.files), chunks_referenced=len(expected))

    readable = []
    for cid in sorted(expected):
        if cid not in stored:
            report.missing.append(cid)
        elif stored[cid] != expected[cid] + OVERHEAD:
            report.corrupt.append(cid)
        else:
            readable.append(cid)

    count = math.ceil(len(readable) * read_data_subset)
    # Sampling for coverage, not secrecy: a seeded PRNG makes a drill reproducible.
    sample = random.Random(seed).sample(readable, count)  # noqa: S311

    def check(cid: str) -> str | None:
        try:
            plaintext = decrypt_chunk(keys, cid, store.get(chunk_object(base, cid)))
        except ObjectNotFound:
            return "missing"
        except ChunkCorrupt:
            return "corrupt"
        if not hmac.compare_digest(chunk_id(keys, plaintext), cid):
            return "corrupt"
        return None

    with ThreadPoolExecutor(threads, thread_name_prefix="verify") as pool:
        for cid, problem in zip(sample, pool.map(check, sample), strict=True):
            report.chunks_read += 1
            if problem == "missing":
                report.missing.append(cid)
            elif problem == "corrupt":
                report.corrupt.append(cid)

    bad = set(report.missing) | set(report.corrupt)
    report.damaged_files = [e.path for e in manifest.files if bad.intersection(e.chunks)]
    return report
