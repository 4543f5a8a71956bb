"""Cold content in archive classes, on moto's S3 server over HTTP: what goes cold and what
stays readable, the typed error a read of archived content meets, the store's archive calls
(HEAD state, RestoreObject), which objects a read needs, and GC that never repacks an archived
pack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from backups.engine import (
    Target,
    backup,
    cold_objects,
    init_repository,
    load_manifest,
    objects_to_read,
    restore,
)
from backups.engine.crypto import DatasetKeys
from backups.engine.packs import load_pack_index, pack_object
from backups.engine.repack import collect_packs
from backups.storage import LocalObjectStore, ObjectArchived, S3ObjectStore
from tests.backups.engine.conftest import read_tree, write_tree
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

# Incompressible, and each blob beyond the tests' 64 KiB packs: every blob gets a pack.
FILES = {
    "docs/a.txt": os.urandom(100 * 1024),
    "docs/b.txt": os.urandom(90 * 1024),
    "models/weights.bin": os.urandom(1536 * 1024),
}


def _store(endpoint: str, cold: str | None) -> S3ObjectStore:
    store = S3ObjectStore(
        bucket=f"cold-{uuid.uuid4().hex[:16]}",
        endpoint_url=endpoint,
        region=TEST_REGION,
        access_key_id=TEST_ACCESS_KEY_ID,
        secret_access_key=TEST_SECRET_ACCESS_KEY,
        max_attempts=2,
        cold_storage_class=cold,
    )
    store.create_bucket()
    return store


def _backed_up(
    endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    cold: str | None = "DEEP_ARCHIVE",
    pack_size: int = 64 * 1024,
) -> tuple[S3ObjectStore, bytes, str]:
    store = _store(endpoint, cold)
    source = LocalObjectStore(tmp_path_factory.mktemp("src"))
    write_tree(source, "", FILES)
    data_key = os.urandom(32)
    init_repository(store, "r", os.urandom(32), data_key)
    # Small packs: each file's content lands in packs of its own.
    result = backup(source, "", [(store, "r")], data_key, pack_size=pack_size)
    return store, data_key, result.manifest_id


def test_only_data_packs_go_cold_and_a_read_of_them_is_refused_with_a_typed_error(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, data_key, manifest_id = _backed_up(s3_endpoint, tmp_path_factory)
    classes = {info.key: info.storage_class for info in store.list("r/")}
    kinds = load_pack_index(store, "r", DatasetKeys.from_data_key(data_key)).kinds
    content = {pack_object("r", p) for p, kind in kinds.items() if kind == "data"}
    assert content
    assert {classes[k] for k in content} == {"DEEP_ARCHIVE"}
    # File lists, indexes, the key and the manifest: everything a backup reads stays warm.
    assert {c for k, c in classes.items() if k not in content} == {"STANDARD"}
    assert len(classes) > len(content) + 2
    head = store.head(sorted(content)[0])
    assert head is not None
    assert head.storage_class == "DEEP_ARCHIVE"
    assert head.archived
    # The file list still opens: only content is cold.
    assert {e.path for e in load_manifest(store, "r", data_key, manifest_id).files} == set(FILES)

    destination = LocalObjectStore(tmp_path_factory.mktemp("out"))
    with pytest.raises(ObjectArchived, match="must be retrieved"):
        restore(store, "r", data_key, manifest_id, destination)
    # An archived object's 403 says nothing about the fast GET path: it stays on.
    assert store._direct_enabled


def test_a_read_needs_the_packs_of_the_files_it_selects(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, data_key, manifest_id = _backed_up(s3_endpoint, tmp_path_factory)
    target = Target(store, "r")
    cold = cold_objects(target)
    everything = objects_to_read(target, data_key, [manifest_id])
    docs = objects_to_read(target, data_key, [manifest_id], path_prefix="docs")

    assert set(everything) == cold  # every data pack holds some file's content
    assert docs
    assert set(docs) < set(everything)
    index = load_pack_index(store, "r", DatasetKeys.from_data_key(data_key))
    manifest = load_manifest(store, "r", data_key, manifest_id)
    expected = {
        pack_object("r", index.blobs[cid].pack)
        for entry in manifest.files
        if entry.path.startswith("docs/")
        for cid in entry.chunks
    }
    assert set(docs) == expected


def test_restore_object_makes_archived_content_readable(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, data_key, manifest_id = _backed_up(s3_endpoint, tmp_path_factory)
    keys = objects_to_read(Target(store, "r"), data_key, [manifest_id])
    before = store.archive_state(keys[0])
    assert before is not None
    assert (before.storage_class, before.restore) == ("DEEP_ARCHIVE", "none")
    assert not before.readable
    assert store.archive_state("r/data/absent") is None
    with pytest.raises(ValueError, match="tier"):
        store.archive_restore(keys[0], days=1, tier="Fast")  # a tier S3 does not have

    for key in keys:
        store.archive_restore(key, days=1, tier="Standard")
    store.archive_restore(keys[0], days=1, tier="Standard")  # asked twice: no failure

    after = store.archive_state(keys[0])
    assert after is not None
    assert (after.storage_class, after.restore) == ("DEEP_ARCHIVE", "done")
    assert after.readable
    destination = LocalObjectStore(tmp_path_factory.mktemp("out"))
    restore(store, "r", data_key, manifest_id, destination)
    assert read_tree(destination, "") == FILES


def test_gc_never_repacks_an_archived_pack_but_deletes_an_unreferenced_one(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    results = {}
    for cold in ("DEEP_ARCHIVE", None):
        # One big pack: the weights are most of its bytes.
        store, data_key, manifest_id = _backed_up(
            s3_endpoint, tmp_path_factory, cold=cold, pack_size=16 * 1024 * 1024
        )
        keys = DatasetKeys.from_data_key(data_key)
        manifest = load_manifest(store, "r", data_key, manifest_id)
        docs_only = {c for e in manifest.files if e.path.startswith("docs/") for c in e.chunks}
        docs_only |= set(manifest.segments)
        results[cold] = collect_packs(store, "r", keys, docs_only, cutoff=later)
        if cold is not None:
            # The archived pack stays whole; nothing it holds was lost.
            assert results[cold].packs_archived_kept == 1
            assert results[cold].packs_repacked == 0
            gone = collect_packs(store, "r", keys, set(manifest.segments), cutoff=later)
            assert gone.packs_deleted == 1
            assert not [i for i in store.list("r/data/") if i.archived]
    # The same repository in the standard class is repacked: the rule is the class, not luck.
    assert results[None].packs_repacked == 1
    assert results[None].packs_archived_kept == 0


def test_local_stores_have_no_classes(
    make_local_store: Callable[[], LocalObjectStore],
) -> None:
    store = make_local_store()
    store.put("a", b"x", cold=True)
    info = store.head("a")
    assert info is not None
    assert (info.storage_class, info.archived) == ("STANDARD", False)
