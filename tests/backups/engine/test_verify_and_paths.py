"""verify() finds damage; restore refuses manifest paths that would escape the destination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from backups.engine import (
    ChunkCorrupt,
    FileEntry,
    Manifest,
    UnsafePath,
    backup,
    restore,
    verify,
)
from backups.engine.crypto import DatasetKeys
from backups.engine.manifest import new_manifest_id
from backups.engine.repository import chunk_object, store_manifest
from backups.storage import ObjectStore
from tests.backups.engine.conftest import CHUNK, read_tree, sample_tree, write_tree


def _snapshot(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> tuple[ObjectStore, Manifest]:
    source, target = make_store(), make_store()
    write_tree(source, "", sample_tree())
    init_target(target, "r")
    return target, backup(
        source, "", [(target, "r")], data_key, chunk_size=CHUNK, repository_format=1
    ).manifest


def test_verify_clean_snapshot(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    target, manifest = _snapshot(make_store, init_target, data_key)
    report = verify(target, "r", data_key, manifest.id, read_data_subset=1.0)
    assert report.ok
    assert report.chunks_read == report.chunks_referenced == len(manifest.chunk_ids())
    assert verify(target, "r", data_key, manifest.id).chunks_read == 0


def test_verify_detects_missing_and_corrupt_chunks(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    target, manifest = _snapshot(make_store, init_target, data_key)
    big = next(e for e in manifest.files if e.path == "big.bin")
    exact = next(e for e in manifest.files if e.path == "exact.bin")
    target.delete_versions([(chunk_object("r", big.chunks[1]), None)])
    sealed = bytearray(target.get(chunk_object("r", exact.chunks[0])))
    sealed[100] ^= 0x01  # same size: only reading it can tell
    target.put(chunk_object("r", exact.chunks[0]), bytes(sealed))

    shallow = verify(target, "r", data_key, manifest.id)
    assert shallow.missing == [big.chunks[1]]
    assert shallow.corrupt == []
    assert not shallow.ok

    deep = verify(target, "r", data_key, manifest.id, read_data_subset=1.0)
    assert deep.missing == [big.chunks[1]]
    assert deep.corrupt == [exact.chunks[0]]
    assert sorted(deep.damaged_files) == ["big.bin", "exact.bin"]

    truncated = target.get(chunk_object("r", big.chunks[0]))[:-1]
    target.put(chunk_object("r", big.chunks[0]), truncated)
    assert big.chunks[0] in verify(target, "r", data_key, manifest.id).corrupt

    destination = make_store()
    with pytest.raises(ChunkCorrupt):
        restore(target, "r", data_key, manifest.id, destination, "", path_prefix="exact.bin")
    assert destination.head("exact.bin") is None, "a file that fails its check is not stored"


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\x00b"])
def test_restore_refuses_escaping_paths(
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
    bad: str,
) -> None:
    target, destination = make_local_store(), make_local_store()
    init_target(target, "r")
    keys = DatasetKeys.from_data_key(data_key)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    entries = (
        FileEntry("fine.txt", 0, now, "e", empty_sha, ()),
        FileEntry(bad, 0, now, "e", empty_sha, ()),
    )
    manifest = Manifest(new_manifest_id(now), now, "", CHUNK, None, entries)
    store_manifest(target, "r", keys, manifest)
    with pytest.raises(UnsafePath, match="unsafe path"):
        restore(target, "r", data_key, manifest.id, destination, "out")
    assert read_tree(destination, "") == {}, "nothing is written before every path is checked"
