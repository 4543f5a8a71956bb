"""The backup repository engine: Django-free, talking only to `backups.storage.ObjectStore`.

Public entry points (what services call):
  init_repository, load_data_key, generate_data_key, wrap_data_key, unwrap_data_key
  backup, restore, verify
  cold_objects, objects_to_read (what a read of archived content must retrieve first)
  list_snapshots, load_manifest
  select_snapshots_to_keep, forget, garbage_collect
"""

from backups.engine.archive import cold_objects, objects_to_read
from backups.engine.backup import (
    DEFAULT_CHUNK_SIZE,
    BackupResult,
    BackupStats,
    ProgressCallback,
)
from backups.engine.crypto import DatasetKeys, generate_data_key, unwrap_data_key, wrap_data_key
from backups.engine.errors import (
    ChunkCorrupt,
    EngineError,
    FileIntegrityError,
    KeyUnwrapFailed,
    ManifestCorrupt,
    RepositoryAlreadyInitialized,
    RepositoryNotInitialized,
    SnapshotNotFound,
    SourceEmpty,
    UnsafePath,
)
from backups.engine.manifest import FileEntry, Manifest
from backups.engine.memory import large_buffers_mapped
from backups.engine.packed_backup import backup
from backups.engine.packs import (
    DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_PACK_SIZE,
    PackIndex,
    load_pack_index,
    pack_opens,
)
from backups.engine.repository import (
    SnapshotRef,
    Target,
    find_entry,
    init_repository,
    key_object,
    list_snapshots,
    load_data_key,
    load_manifest,
    snapshot_files,
)
from backups.engine.restore import RestoreResult, check_manifest_path, restore
from backups.engine.retention import (
    GarbageCollectResult,
    RetentionDecision,
    RetentionPolicy,
    forget,
    garbage_collect,
    select_snapshots_to_keep,
)
from backups.engine.verify import VerifyReport, verify

# Every process that runs the engine (workers, the command line, the bench) returns its large
# buffers to the system once freed (see memory.py).
large_buffers_mapped()

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_COMPRESSION_LEVEL",
    "DEFAULT_PACK_SIZE",
    "BackupResult",
    "BackupStats",
    "ChunkCorrupt",
    "DatasetKeys",
    "EngineError",
    "FileEntry",
    "FileIntegrityError",
    "GarbageCollectResult",
    "KeyUnwrapFailed",
    "Manifest",
    "ManifestCorrupt",
    "PackIndex",
    "ProgressCallback",
    "RepositoryAlreadyInitialized",
    "RepositoryNotInitialized",
    "RestoreResult",
    "RetentionDecision",
    "RetentionPolicy",
    "SnapshotNotFound",
    "SnapshotRef",
    "SourceEmpty",
    "Target",
    "UnsafePath",
    "VerifyReport",
    "backup",
    "check_manifest_path",
    "cold_objects",
    "find_entry",
    "forget",
    "garbage_collect",
    "generate_data_key",
    "init_repository",
    "key_object",
    "list_snapshots",
    "load_data_key",
    "load_manifest",
    "load_pack_index",
    "objects_to_read",
    "pack_opens",
    "restore",
    "select_snapshots_to_keep",
    "snapshot_files",
    "unwrap_data_key",
    "verify",
    "wrap_data_key",
]
