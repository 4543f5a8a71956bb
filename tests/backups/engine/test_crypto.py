"""Key wrapping and chunk sealing: tampering, wrong keys and swaps must all fail loudly."""

from __future__ import annotations

import os

import pytest

from backups.engine import KeyUnwrapFailed, generate_data_key, unwrap_data_key, wrap_data_key
from backups.engine.crypto import (
    OVERHEAD,
    DatasetKeys,
    chunk_id,
    decrypt_chunk,
    encrypt_chunk,
)
from backups.engine.errors import ChunkCorrupt


def test_wrap_roundtrip_and_binding() -> None:
    master, data = os.urandom(32), generate_data_key()
    wrapped = wrap_data_key(master, data, context=b"dataset-1")
    assert wrapped[0] == 1, "a version byte leads the wrapped key"
    assert data not in wrapped
    assert unwrap_data_key(master, wrapped, context=b"dataset-1") == data
    with pytest.raises(KeyUnwrapFailed):
        unwrap_data_key(os.urandom(32), wrapped, context=b"dataset-1")
    with pytest.raises(KeyUnwrapFailed):
        unwrap_data_key(master, wrapped, context=b"dataset-2")
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(KeyUnwrapFailed):
        unwrap_data_key(master, bytes(tampered), context=b"dataset-1")
    with pytest.raises(ValueError, match="32 raw bytes"):
        wrap_data_key(b"short", data)


def test_chunk_ids_are_keyed_per_dataset() -> None:
    one = DatasetKeys.from_data_key(generate_data_key())
    two = DatasetKeys.from_data_key(generate_data_key())
    assert chunk_id(one, b"same") == chunk_id(one, b"same")
    assert chunk_id(one, b"same") != chunk_id(two, b"same")
    assert "same" not in repr(one)
    assert "redacted" in repr(one)


def test_chunk_seal_open_and_swap_detection() -> None:
    keys = DatasetKeys.from_data_key(generate_data_key())
    a, b = b"a" * 100, b"b" * 100
    id_a, id_b = chunk_id(keys, a), chunk_id(keys, b)
    sealed_a = bytes(encrypt_chunk(keys, id_a, a))
    assert len(sealed_a) == len(a) + OVERHEAD
    assert sealed_a != bytes(encrypt_chunk(keys, id_a, a)), "fresh nonce every time"
    assert decrypt_chunk(keys, id_a, sealed_a) == a
    with pytest.raises(ChunkCorrupt):
        decrypt_chunk(keys, id_b, sealed_a)  # stored under another id
    flipped = bytearray(sealed_a)
    flipped[20] ^= 0x80
    with pytest.raises(ChunkCorrupt):
        decrypt_chunk(keys, id_a, bytes(flipped))
    other = DatasetKeys.from_data_key(generate_data_key())
    with pytest.raises(ChunkCorrupt):
        decrypt_chunk(other, id_a, sealed_a)
