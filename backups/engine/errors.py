"""Engine exceptions. Storage failures keep their own types (backups.storage.errors)."""

from __future__ import annotations


class EngineError(Exception):
    """Base class for every backup-engine failure that is not a storage failure."""


class KeyUnwrapFailed(EngineError):
    """The wrapped data key does not open under the given master key and context."""


class RepositoryNotInitialized(EngineError):
    """A target has no wrapped key object, so it holds no repository for this dataset."""


class RepositoryAlreadyInitialized(EngineError):
    """A target already holds a key for this dataset; overwriting it would orphan its data."""


class ChunkCorrupt(EngineError):
    """A stored chunk failed authentication (altered, truncated, swapped or wrong key)."""

    def __init__(self, chunk_id: str, reason: str) -> None:
        super().__init__(f"chunk {chunk_id} is corrupt: {reason}")
        self.chunk_id = chunk_id
        self.reason = reason


class ManifestCorrupt(EngineError):
    """A snapshot manifest failed authentication or does not parse."""

    def __init__(self, manifest_id: str, reason: str) -> None:
        super().__init__(f"snapshot {manifest_id} is unreadable: {reason}")
        self.manifest_id = manifest_id


class SnapshotNotFound(EngineError):
    """No snapshot with that id exists on the target."""


class UnsafePath(EngineError):
    """A manifest path would escape the restore destination ('..', absolute, NUL, empty part)."""


class FileIntegrityError(EngineError):
    """Restored bytes do not match the size or sha256 the manifest recorded."""


class SourceEmpty(EngineError):
    """The source prefix holds no objects; refusing to record an empty snapshot by accident."""
