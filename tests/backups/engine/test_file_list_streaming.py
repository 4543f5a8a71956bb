"""A format-2 file list is streamed, never held whole: the backup walks the listing once in
path order beside its parent's segments, and a restore reads the list segment by segment. These
tests hold the rules that make that safe: order, a parent that breaks midway, unsafe paths in a
late segment, a store that does not list in order, and garbage collection's walk of every
snapshot's list."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backups.engine import (
    UnsafePath,
    backup,
    find_entry,
    list_snapshots,
    load_manifest,
    restore,
    snapshot_files,
)
from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.errors import ManifestCorrupt
from backups.engine.manifest import FileEntry, entry_doc, new_manifest_id
from backups.engine.packs import LIST_PACK, PackContents, load_pack_index, seal_blob, store_pack
from backups.engine.repository import referenced_ids, store_manifest
from backups.storage import LocalObjectStore, ObjectInfo, ObjectStore
from tests.backups.engine.conftest import read_tree, write_tree

BASE = "r"
FILES = 3000  # about a dozen segments


def _tree() -> dict[str, bytes]:
    return {
        f"d{i % 7}/{i:05d}.txt": b"row %d %s" % (i, os.urandom(4).hex().encode())
        for i in range(FILES)
    }


@pytest.fixture
def repo(
    tmp_path: Path, init_target: Callable[[ObjectStore, str], None]
) -> tuple[LocalObjectStore, LocalObjectStore]:
    store = LocalObjectStore(tmp_path / "repo", create=True, fsync=False)
    init_target(store, BASE)
    source = LocalObjectStore(tmp_path / "src", create=True, fsync=False)
    return store, source


def test_the_local_store_lists_in_key_order_as_it_walks(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, fsync=False)
    # A directory sorts as "name/" among its siblings: "a-b" < "a.txt" < "a/…" < "a0".
    names = ["a/x", "a-b", "a.txt", "a0", "a/y/z", "a/y-1", "b", "a/y/a", "A"]
    for name in names:
        store.put(name, b"x")
    listed = store.list("")
    assert isinstance(listed, Iterator)
    assert [info.key for info in listed] == sorted(names)
    assert [info.key for info in store.list("a/y")] == ["a/y-1", "a/y/a", "a/y/z"]


def test_a_rerun_with_a_streamed_parent_reuses_every_file_and_restores_the_same_tree(
    repo: tuple[LocalObjectStore, LocalObjectStore], tmp_path: Path, data_key: bytes
) -> None:
    store, source = repo
    tree = _tree()
    write_tree(source, "", tree)
    first = backup(source, "", [(store, BASE)], data_key)
    assert len(first.manifest.segments) > 5
    assert not first.manifest.files_loaded
    assert (first.manifest.file_count, first.manifest.total_size) == (
        FILES,
        sum(map(len, tree.values())),
    )

    parent = load_manifest(store, BASE, data_key, first.manifest_id, files=False)
    (tmp_path / "src" / "d3" / "00003.txt").unlink()
    source.put("d6/99999.txt", b"added")
    source.put("d0/00007.txt", b"edited")
    second = backup(source, "", [(store, BASE)], data_key, parent)

    assert second.stats.files_seen == FILES
    assert second.stats.files_reused == FILES - 2
    assert second.stats.files_read == 2
    # Only the segments around the three changes are new.
    assert len(set(second.manifest.segments) - set(first.manifest.segments)) <= 4
    loaded = load_manifest(store, BASE, data_key, second.manifest_id)
    assert list(snapshot_files(store, BASE, data_key, second.manifest_id)) == list(loaded.files)
    assert [e.path for e in loaded.files] == sorted(
        loaded_path for loaded_path in read_tree(source, "")
    )

    out = LocalObjectStore(tmp_path / "out", create=True, fsync=False)
    result = restore(store, BASE, data_key, second.manifest_id, out, threads=4)
    assert result.files_restored == FILES
    assert read_tree(out, "") == read_tree(source, "")

    part = LocalObjectStore(tmp_path / "part", create=True, fsync=False)
    some = restore(store, BASE, data_key, second.manifest_id, part, path_prefix="d6")
    expected = {k: v for k, v in read_tree(source, "").items() if k.startswith("d6/")}
    assert some.files_restored == len(expected)
    assert read_tree(part, "") == expected


def test_a_parent_segment_that_cannot_be_read_means_the_files_after_it_are_read_again(
    repo: tuple[LocalObjectStore, LocalObjectStore], tmp_path: Path, data_key: bytes
) -> None:
    store, source = repo
    tree = _tree()
    write_tree(source, "", tree)
    first = backup(source, "", [(store, BASE)], data_key)
    parent = load_manifest(store, BASE, data_key, first.manifest_id, files=False)
    # A segment the repository does not hold (a damaged or collected list pack).
    middle = len(parent.segments) // 2
    broken = replace(
        parent, segments=(*parent.segments[:middle], "0" * 64, *parent.segments[middle + 1 :])
    )
    before = sum(parent.segment_sizes[:middle])

    again = backup(source, "", [(store, BASE)], data_key, broken)

    assert again.stats.files_reused == before
    assert again.stats.files_read == FILES - before
    assert again.stats.chunks_uploaded == 0  # read again, but every blob was already stored
    out = LocalObjectStore(tmp_path / "out", create=True, fsync=False)
    restore(store, BASE, data_key, again.manifest_id, out)
    assert read_tree(out, "") == tree


class _Unordered(LocalObjectStore):
    """A store that lists newest-first, as S3 Express directory buckets may."""

    def list(self, prefix: str = "", *, skipped: list[str] | None = None) -> Iterator[ObjectInfo]:
        yield from reversed(list(super().list(prefix, skipped=skipped)))


def test_a_source_that_lists_out_of_order_is_sorted_and_backed_up_whole(
    repo: tuple[LocalObjectStore, LocalObjectStore], tmp_path: Path, data_key: bytes
) -> None:
    store, _ = repo
    source = _Unordered(tmp_path / "src", fsync=False)
    tree = _tree()
    write_tree(source, "", tree)
    result = backup(source, "", [(store, BASE)], data_key)
    assert result.stats.files_seen == FILES
    loaded = load_manifest(store, BASE, data_key, result.manifest_id)
    assert [e.path for e in loaded.files] == sorted(tree)
    out = LocalObjectStore(tmp_path / "out", create=True, fsync=False)
    restore(store, BASE, data_key, result.manifest_id, out)
    assert read_tree(out, "") == tree


def _with_extra_segment(
    store: ObjectStore, data_key: bytes, manifest_id: str, entries: list[FileEntry], count: int
) -> str:
    """A copy of the snapshot whose file list ends with one more segment holding `entries`
    (stored in a list pack of its own), and which claims `count` more files."""
    keys = DatasetKeys.from_data_key(data_key)
    head = load_manifest(store, BASE, data_key, manifest_id, files=False)
    data = json.dumps({"files": [entry_doc(e) for e in entries]}).encode()
    sid = chunk_id(keys, data)
    sealed, compressed = seal_blob(keys, sid, data, 3)
    contents = PackContents.empty()
    contents.add(sid, sealed, len(data), compressed)
    store_pack(store, BASE, keys, contents, kind=LIST_PACK)
    now = datetime.now(UTC)
    assert head.listed_files is not None
    crafted = replace(
        head,
        id=new_manifest_id(now),
        created=now,
        segments=(*head.segments, sid),
        segment_sizes=(*head.segment_sizes, len(entries)),
        listed_files=head.listed_files + count,
    )
    store_manifest(store, BASE, keys, crafted)
    return crafted.id


@pytest.mark.parametrize(
    ("path", "counted", "refusal"),
    [
        # An unsafe path in the last segment: every path is checked before anything is written.
        ("../escape.txt", 1, UnsafePath),
        # A list holding one entry fewer than its manifest counts.
        ("zz/extra.txt", 2, ManifestCorrupt),
    ],
    ids=["unsafe-path-last", "count-mismatch"],
)
def test_a_bad_last_segment_stops_the_restore_before_anything_is_written(
    repo: tuple[LocalObjectStore, LocalObjectStore],
    tmp_path: Path,
    data_key: bytes,
    path: str,
    counted: int,
    refusal: type[Exception],
) -> None:
    store, source = repo
    write_tree(source, "", _tree())
    first = backup(source, "", [(store, BASE)], data_key)
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    extra = FileEntry(path, 0, datetime.now(UTC), "e", empty_sha, ())
    crafted = _with_extra_segment(store, data_key, first.manifest_id, [extra], counted)

    out = LocalObjectStore(tmp_path / "out", create=True, fsync=False)
    with pytest.raises(refusal):
        restore(store, BASE, data_key, crafted, out)
    assert read_tree(out, "") == {}, "nothing is written before every segment is checked"
    if refusal is ManifestCorrupt:
        with pytest.raises(ManifestCorrupt):
            load_manifest(store, BASE, data_key, crafted)


class _CountingReads(LocalObjectStore):
    """Counts ranged reads of list packs (file-list segments are read that way)."""

    list_reads = 0

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if "/data/" in key and key.rsplit("/", 1)[-1] in self.list_packs:
            self.list_reads += 1
        return super().get_range(key, start, length)

    list_packs: frozenset[str] = frozenset()


def test_garbage_collection_reads_a_segment_several_snapshots_share_once(
    tmp_path: Path, init_target: Callable[[ObjectStore, str], None], data_key: bytes
) -> None:
    store = _CountingReads(tmp_path / "repo", create=True, fsync=False)
    init_target(store, BASE)
    source = LocalObjectStore(tmp_path / "src", create=True, fsync=False)
    write_tree(source, "", _tree())
    keys = DatasetKeys.from_data_key(data_key)
    first = backup(source, "", [(store, BASE)], data_key)
    for _ in range(3):  # no change: the same segments each time
        parent = load_manifest(store, BASE, data_key, first.manifest_id, files=False)
        backup(source, "", [(store, BASE)], data_key, parent)
    snapshots = [ref.id for ref in list_snapshots(store, BASE)]
    assert len(snapshots) == 4
    index = load_pack_index(store, BASE, keys)
    store.list_packs = frozenset(p for p, kind in index.kinds.items() if kind == LIST_PACK)

    chunks, blobs = referenced_ids(store, BASE, keys, snapshots)

    assert store.list_reads == len(first.manifest.segments)
    full = load_manifest(store, BASE, data_key, first.manifest_id)
    assert chunks == set()
    assert blobs == full.chunk_ids()


def test_one_file_is_found_reading_the_list_only_as_far_as_its_path(
    tmp_path: Path, init_target: Callable[[ObjectStore, str], None], data_key: bytes
) -> None:
    store = _CountingReads(tmp_path / "repo", create=True, fsync=False)
    init_target(store, BASE)
    source = LocalObjectStore(tmp_path / "src", create=True, fsync=False)
    tree = _tree()
    write_tree(source, "", tree)
    result = backup(source, "", [(store, BASE)], data_key)
    keys = DatasetKeys.from_data_key(data_key)
    index = load_pack_index(store, BASE, keys)
    store.list_packs = frozenset(p for p, kind in index.kinds.items() if kind == LIST_PACK)
    paths = sorted(tree)

    first = find_entry(store, BASE, data_key, result.manifest_id, paths[0])
    assert first is not None
    assert (first.path, first.size) == (paths[0], len(tree[paths[0]]))
    assert store.list_reads == 1
    for path in (paths[len(paths) // 2], paths[-1]):
        found = find_entry(store, BASE, data_key, result.manifest_id, path)
        assert found is not None
        assert found.path == path
    for missing in ("", "d0/00000.txt.bak", "zzz", "d9/00001.txt"):
        assert find_entry(store, BASE, data_key, result.manifest_id, missing) is None
