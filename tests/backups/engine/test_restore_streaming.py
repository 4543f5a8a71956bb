"""The streaming restore path: chunk tampering inside multi-chunk files, worker counts, and the
streaming chunk decryption it is built on."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from backups.engine import ChunkCorrupt, FileIntegrityError, Manifest, backup, restore
from backups.engine.crypto import (
    CHUNK_HEADER_SIZE,
    TAG_SIZE,
    ChunkOpener,
    DatasetKeys,
    decrypt_chunk,
    encrypt_chunk,
    encrypt_chunk_into,
    generate_data_key,
)
from backups.engine.manifest import FileEntry
from backups.engine.repository import chunk_object, store_manifest
from backups.storage import ObjectStore, S3ObjectStore
from tests.backups.engine.conftest import CHUNK, read_tree, sample_tree, write_tree


def _snapshot(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
    tree: dict[str, bytes],
) -> tuple[ObjectStore, Manifest]:
    source, target = make_store(), make_store()
    write_tree(source, "", tree)
    init_target(target, "r")
    return target, backup(
        source, "", [(target, "r")], data_key, chunk_size=CHUNK, repository_format=1
    ).manifest


def _many_big_files() -> dict[str, bytes]:
    rng = random.Random(99)
    tree = {f"big/{i}.bin": rng.randbytes(CHUNK * rng.randint(2, 6) + i) for i in range(7)}
    tree.update({f"small/{i}.txt": rng.randbytes(rng.randint(0, 5000)) for i in range(20)})
    return tree


@pytest.mark.parametrize("threads", [1, 2, 3, 16])
def test_restore_is_byte_identical_for_any_worker_count(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
    threads: int,
) -> None:
    tree = _many_big_files() | sample_tree()
    target, manifest = _snapshot(make_store, init_target, data_key, tree)
    destination = make_store()
    progress: list[tuple[int, int]] = []
    result = restore(
        target,
        "r",
        data_key,
        manifest.id,
        destination,
        "",
        threads=threads,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert read_tree(destination, "") == tree
    assert result.files_restored == len(tree)
    assert result.bytes_restored == sum(len(v) for v in tree.values())
    assert progress[-1] == (result.bytes_restored, result.bytes_restored)


@pytest.mark.parametrize("damage", ["flip-last-chunk", "swap-chunks", "grow-chunk", "truncate"])
def test_damaged_chunk_in_a_multi_chunk_file_stores_nothing(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
    damage: str,
) -> None:
    # One big file alone: its later chunks are prefetched (every other worker is idle).
    tree = {"one/big.bin": os.urandom(CHUNK * 6 + 123)}
    target, manifest = _snapshot(make_store, init_target, data_key, tree)
    (entry,) = manifest.files
    last = chunk_object("r", entry.chunks[-1])
    sealed = bytearray(target.get(last))
    if damage == "flip-last-chunk":
        sealed[len(sealed) // 2] ^= 0x01
    elif damage == "swap-chunks":
        sealed = bytearray(target.get(chunk_object("r", entry.chunks[2])))
    elif damage == "grow-chunk":
        sealed += os.urandom(CHUNK + 64)
    else:
        sealed = sealed[: CHUNK_HEADER_SIZE + TAG_SIZE - 1]
    target.put(last, bytes(sealed))

    destination = make_store()
    with pytest.raises(ChunkCorrupt):
        restore(target, "r", data_key, manifest.id, destination, "")
    assert destination.head("one/big.bin") is None, "a file that fails its check is not stored"
    assert read_tree(destination, "") == {}


def test_manifest_hash_mismatch_stores_nothing(
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    target, manifest = _snapshot(
        make_local_store, init_target, data_key, {"a.bin": os.urandom(CHUNK * 3)}
    )
    (entry,) = manifest.files
    wrong = FileEntry(entry.path, entry.size, entry.mtime, entry.etag, "0" * 64, entry.chunks)
    forged = Manifest(
        manifest.id[:-1] + ("0" if manifest.id[-1] != "0" else "1"),
        manifest.created,
        "",
        CHUNK,
        None,
        (wrong,),
        format=1,
    )
    store_manifest(target, "r", DatasetKeys.from_data_key(data_key), forged)
    destination = make_local_store()
    with pytest.raises(FileIntegrityError):
        restore(target, "r", data_key, forged.id, destination, "")
    assert read_tree(destination, "") == {}


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000, 256 * 1024 + 3])
def test_streaming_open_matches_whole_chunk_decryption(size: int) -> None:
    keys = DatasetKeys.from_data_key(generate_data_key())
    plaintext = os.urandom(size)
    sealed = encrypt_chunk(keys, "cid", plaintext)
    into = bytearray(size + 29)
    encrypt_chunk_into(keys, "cid", plaintext, into)
    assert decrypt_chunk(keys, "cid", bytes(into)) == plaintext

    opener = ChunkOpener(keys, "cid", sealed[:CHUNK_HEADER_SIZE])
    ciphertext = memoryview(sealed)[CHUNK_HEADER_SIZE:-TAG_SIZE]
    out = bytearray(4096 + 16)
    pieces = []
    for start in range(0, len(ciphertext), 4096):
        n = opener.update_into(ciphertext[start : start + 4096], out)
        pieces.append(bytes(out[:n]))
    opener.finish(bytes(sealed[-TAG_SIZE:]))
    assert b"".join(pieces) == plaintext == decrypt_chunk(keys, "cid", bytes(sealed))

    wrong_id = ChunkOpener(keys, "other", sealed[:CHUNK_HEADER_SIZE])
    wrong_id.update_into(ciphertext, bytearray(len(ciphertext) + 16))
    with pytest.raises(ChunkCorrupt):
        wrong_id.finish(bytes(sealed[-TAG_SIZE:]))


def test_s3_get_works_with_and_without_the_fast_path(
    make_s3_store: Callable[..., S3ObjectStore],
) -> None:
    store = make_s3_store()
    data = os.urandom(3 * 1024 * 1024 + 5)
    store.put("dir/with space/ünï.bin", data)
    assert store.get("dir/with space/ünï.bin") == data
    with store.open("dir/with space/ünï.bin") as body:
        buffer = bytearray(len(data) + 10)
        view = memoryview(buffer)
        got = 0
        while n := body.readinto(view[got:]):
            got += n
        assert bytes(buffer[:got]) == data
    store._direct_enabled = False
    assert store.get("dir/with space/ünï.bin") == data
