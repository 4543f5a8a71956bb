"""Keys and authenticated encryption for backup repositories.

Key hierarchy: the organization's master key wraps one random data key per dataset; three
sub-keys are derived from the data key with HKDF, one per purpose (chunk ids, chunk encryption,
manifest encryption), so no key is ever used for two jobs. Destroying the wrapped data key
makes every chunk and manifest of the dataset unreadable (crypto-shredding).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backups.engine.errors import ChunkCorrupt, KeyUnwrapFailed, ManifestCorrupt

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
WRAP_VERSION = 1
CHUNK_VERSION = 1
MANIFEST_VERSION = 1
# version byte + nonce in front, GCM tag behind: what encryption adds to every object.
OVERHEAD = 1 + NONCE_SIZE + TAG_SIZE
# What precedes a chunk's ciphertext: the version byte and the nonce.
CHUNK_HEADER_SIZE = 1 + NONCE_SIZE

_WRAP_AAD = b"agencyops/data-key/v1:"
_CHUNK_AAD = b"agencyops/chunk/v1:"
_MANIFEST_AAD = b"agencyops/manifest/v1:"
_INDEX_AAD = b"agencyops/pack-index/v2:"
INDEX_VERSION = 2


def generate_data_key() -> bytes:
    """A fresh random 256-bit dataset key."""
    return os.urandom(KEY_SIZE)


def _check_key(key: bytes, what: str) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"{what} must be {KEY_SIZE} raw bytes, got {len(key)}")


def wrap_data_key(master_key: bytes, data_key: bytes, *, context: bytes = b"") -> bytes:
    """Encrypt a data key under the master key; `context` (e.g. the dataset id) is bound as AAD
    so a wrapped key copied to another dataset's repository will not unwrap there."""
    _check_key(master_key, "master key")
    _check_key(data_key, "data key")
    header = bytes([WRAP_VERSION])
    nonce = os.urandom(NONCE_SIZE)
    sealed = AESGCM(master_key).encrypt(nonce, data_key, _WRAP_AAD + header + context)
    return header + nonce + sealed


def unwrap_data_key(master_key: bytes, wrapped: bytes, *, context: bytes = b"") -> bytes:
    """Recover a data key; any tampering, wrong master key or wrong context raises."""
    _check_key(master_key, "master key")
    if len(wrapped) != 1 + NONCE_SIZE + KEY_SIZE + TAG_SIZE or wrapped[0] != WRAP_VERSION:
        raise KeyUnwrapFailed("wrapped data key has an unknown format or version")
    nonce = wrapped[1 : 1 + NONCE_SIZE]
    try:
        return AESGCM(master_key).decrypt(
            nonce, wrapped[1 + NONCE_SIZE :], _WRAP_AAD + wrapped[:1] + context
        )
    except InvalidTag:
        raise KeyUnwrapFailed(
            "wrapped data key does not authenticate (wrong master key or context, or tampered)"
        ) from None


def _derive(data_key: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"agencyops/" + purpose
    ).derive(data_key)


@dataclass(frozen=True, slots=True, repr=False)
class DatasetKeys:
    """The per-purpose keys derived from one dataset key. repr=False: keys never reach logs."""

    chunk_id_key: bytes
    chunk_cipher: AESGCM
    manifest_cipher: AESGCM
    # The raw chunk key too, for streaming decryption (ChunkOpener), which AESGCM cannot do.
    chunk_enc_key: bytes
    # Format 2: the pack indexes' key, and the seed of the content-defined chunker's gear table.
    index_cipher: AESGCM
    chunker_seed: int

    @classmethod
    def from_data_key(cls, data_key: bytes) -> DatasetKeys:
        _check_key(data_key, "data key")
        chunk_enc_key = _derive(data_key, b"chunk-enc/v1")
        return cls(
            chunk_id_key=_derive(data_key, b"chunk-id/v1"),
            chunk_cipher=AESGCM(chunk_enc_key),
            manifest_cipher=AESGCM(_derive(data_key, b"manifest-enc/v1")),
            chunk_enc_key=chunk_enc_key,
            index_cipher=AESGCM(_derive(data_key, b"index-enc/v2")),
            # 63 bits: pyfastcdc also uses the seed shifted left by one in a 64-bit word.
            chunker_seed=int.from_bytes(_derive(data_key, b"chunker-seed/v2")[:8], "big") >> 1,
        )

    def __repr__(self) -> str:
        return "DatasetKeys(<redacted>)"


def chunk_id(keys: DatasetKeys, plaintext: bytes | memoryview) -> str:
    """The content address: HMAC-SHA256 of the plaintext under the dataset's id key, in hex.

    Keyed, so equal content dedups inside one dataset but reveals nothing across datasets.
    """
    return hmac.digest(keys.chunk_id_key, plaintext, "sha256").hex()


def encrypt_chunk(keys: DatasetKeys, cid: str, plaintext: bytes | memoryview) -> bytearray:
    """Seal a chunk: version byte, random nonce, AES-256-GCM ciphertext and tag.

    The chunk id is the AAD, so a stored chunk swapped for another fails to decrypt. Random
    96-bit nonces stay safe far beyond any dataset's chunk count (2^32 chunks = 16 PiB).
    """
    out = bytearray(len(plaintext) + OVERHEAD)
    encrypt_chunk_into(keys, cid, plaintext, out)
    return out


def encrypt_chunk_into(
    keys: DatasetKeys, cid: str, plaintext: bytes | memoryview, out: bytearray
) -> None:
    """`encrypt_chunk` into a caller's buffer of exactly len(plaintext) + OVERHEAD bytes."""
    if len(out) != len(plaintext) + OVERHEAD:
        raise ValueError("output buffer must be exactly the sealed chunk's size")
    out[0] = CHUNK_VERSION
    nonce = os.urandom(NONCE_SIZE)
    out[1 : 1 + NONCE_SIZE] = nonce
    # Encrypting straight into the output buffer avoids copying multi-MiB ciphertext again.
    keys.chunk_cipher.encrypt_into(
        nonce, plaintext, _CHUNK_AAD + cid.encode(), memoryview(out)[1 + NONCE_SIZE :]
    )


def decrypt_chunk(keys: DatasetKeys, cid: str, sealed: bytes) -> bytes:
    """Open a chunk sealed under `cid`; raises ChunkCorrupt if it was altered or swapped."""
    if len(sealed) < OVERHEAD or sealed[0] != CHUNK_VERSION:
        raise ChunkCorrupt(cid, "unknown format or truncated")
    try:
        # GCM authenticates the ciphertext under this dataset's key with the id as AAD; no
        # second hashing pass is needed (restore also checks every file's sha256).
        # A memoryview slice, because slicing bytes would copy the whole chunk first.
        return keys.chunk_cipher.decrypt(
            sealed[1 : 1 + NONCE_SIZE],
            memoryview(sealed)[1 + NONCE_SIZE :],
            _CHUNK_AAD + cid.encode(),
        )
    except InvalidTag:
        raise ChunkCorrupt(cid, "does not authenticate") from None


class ChunkOpener:
    """Streaming decryption of one sealed chunk (the same format `decrypt_chunk` opens).

    Feed the ciphertext in pieces with `update_into`, then `finish` with the trailing tag.
    Plaintext handed out before `finish` is NOT yet authenticated: callers must keep it from
    becoming visible (e.g. in a temporary file) until `finish` returns.
    """

    __slots__ = ("_cid", "_decryptor")

    def __init__(self, keys: DatasetKeys, cid: str, header: bytes | bytearray | memoryview):
        if len(header) != CHUNK_HEADER_SIZE or header[0] != CHUNK_VERSION:
            raise ChunkCorrupt(cid, "unknown format or truncated")
        self._cid = cid
        nonce = bytes(header[1:])
        self._decryptor = Cipher(algorithms.AES(keys.chunk_enc_key), modes.GCM(nonce)).decryptor()
        self._decryptor.authenticate_additional_data(_CHUNK_AAD + cid.encode())

    def update_into(self, ciphertext: bytes | bytearray | memoryview, out: bytearray) -> int:
        """Decrypt a piece into `out`, which must hold len(ciphertext) + 15 bytes."""
        return self._decryptor.update_into(ciphertext, out)

    def finish(self, tag: bytes) -> None:
        """Check the tag over everything fed; raises ChunkCorrupt if the chunk was altered."""
        if len(tag) != TAG_SIZE:
            raise ChunkCorrupt(self._cid, "unknown format or truncated")
        try:
            self._decryptor.finalize_with_tag(tag)
        except InvalidTag:
            raise ChunkCorrupt(self._cid, "does not authenticate") from None


def encrypt_manifest(keys: DatasetKeys, manifest_id: str, plaintext: bytes) -> bytes:
    """Seal a serialized manifest, bound to its id so snapshots cannot be swapped."""
    nonce = os.urandom(NONCE_SIZE)
    header = bytes([MANIFEST_VERSION])
    sealed = keys.manifest_cipher.encrypt(
        nonce, plaintext, _MANIFEST_AAD + header + manifest_id.encode()
    )
    return header + nonce + sealed


def decrypt_manifest(keys: DatasetKeys, manifest_id: str, sealed: bytes) -> bytes:
    """Open a manifest; raises ManifestCorrupt on tampering, a wrong key or a swapped id."""
    if len(sealed) < OVERHEAD or sealed[0] != MANIFEST_VERSION:
        raise ManifestCorrupt(manifest_id, "unknown format or truncated")
    try:
        return keys.manifest_cipher.decrypt(
            sealed[1 : 1 + NONCE_SIZE],
            sealed[1 + NONCE_SIZE :],
            _MANIFEST_AAD + sealed[:1] + manifest_id.encode(),
        )
    except InvalidTag:
        raise ManifestCorrupt(manifest_id, "does not authenticate") from None


def encrypt_index(keys: DatasetKeys, pack_id: str, plaintext: bytes) -> bytes:
    """Seal a pack's index, bound to the pack id so one pack's index cannot describe another."""
    nonce = os.urandom(NONCE_SIZE)
    header = bytes([INDEX_VERSION])
    sealed = keys.index_cipher.encrypt(nonce, plaintext, _INDEX_AAD + header + pack_id.encode())
    return header + nonce + sealed


def decrypt_index(keys: DatasetKeys, pack_id: str, sealed: bytes) -> bytes | None:
    """Open a pack's index; None when it does not authenticate (the caller reports it)."""
    if len(sealed) < OVERHEAD or sealed[0] != INDEX_VERSION:
        return None
    try:
        return keys.index_cipher.decrypt(
            sealed[1 : 1 + NONCE_SIZE],
            sealed[1 + NONCE_SIZE :],
            _INDEX_AAD + sealed[:1] + pack_id.encode(),
        )
    except InvalidTag:
        return None
