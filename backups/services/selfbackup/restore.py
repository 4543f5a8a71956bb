"""Restoring: works with an empty database, the master key and the target only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader

from backups import engine
from backups.services.selfbackup.common import (
    FORMAT_VERSION,
    KEY_CONTEXT,
    MANIFEST_KIND,
    MANIFEST_NAME,
    SELF_REPOSITORY,
    CountCheck,
    SelfBackupError,
    SelfSnapshot,
    file_uri_path,
)
from backups.services.selfbackup.database import (
    READERS,
    _inventory,
    _run,
    _scratch,
    _sha256,
    _sqlite_name,
)
from backups.storage import LocalObjectStore, S3ObjectStore, StorageError, join_key
from kernel.crypto import master_key


def self_repository_open(
    uri: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> engine.Target:
    """`file:///dir` or `s3://bucket/prefix`: the location's own address (its prefix) or the
    operator directory the self-backup was written to, or the self repository inside either
    (ending in /_agencyops-self). S3 credentials default to the AWS environment variables, as
    boto3 reads them."""
    parts = urlsplit(uri)
    path = unquote(parts.path).rstrip("/")
    if parts.scheme == "file":
        root = file_uri_path(uri)
        if root.name == SELF_REPOSITORY:
            root = root.parent
        try:
            return engine.Target(LocalObjectStore(root), SELF_REPOSITORY)
        except StorageError as exc:
            raise SelfBackupError(f"Cannot reach the target: {exc}.") from None
    if parts.scheme == "s3" and parts.netloc:
        prefix = path.strip("/")
        base = (
            prefix
            if prefix.rsplit("/", 1)[-1] == SELF_REPOSITORY
            else join_key(prefix, SELF_REPOSITORY)
        )
        store = S3ObjectStore(
            bucket=parts.netloc,
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            max_attempts=3,
            connect_timeout=5.0,
        )
        return engine.Target(store, base)
    raise SelfBackupError(f"Give the target as file:///dir or s3://bucket/prefix, not {uri!r}.")


def _open_key(target: engine.Target) -> bytes:
    if not settings.AGENCYOPS_MASTER_KEY and not Path(settings.AGENCYOPS_MASTER_KEY_FILE).exists():
        # Never let the embedded default generate a new key here: it could open nothing.
        raise SelfBackupError(
            "Set AGENCYOPS_MASTER_KEY (or AGENCYOPS_MASTER_KEY_FILE) to the master key of the "
            "instance that wrote the self-backup."
        )
    try:
        return engine.load_data_key(target.store, target.base, master_key(), context=KEY_CONTEXT)
    except engine.KeyUnwrapFailed:
        raise SelfBackupError(
            "The master key does not open this self-backup (AGENCYOPS_MASTER_KEY is not the key "
            "of the instance that wrote it). Nothing was written."
        ) from None
    except engine.RepositoryNotInitialized:
        raise SelfBackupError(
            f"No AgencyOps self-backup at {target.base!r} in {target.store.describe()}."
        ) from None
    except StorageError as exc:
        raise SelfBackupError(f"Cannot reach the target: {exc}") from None


def _fetch(target: engine.Target, data_key: bytes, snapshot_id: str, into: Path, only: str) -> None:
    try:
        engine.restore(
            target.store,
            target.base,
            data_key,
            snapshot_id,
            LocalObjectStore(into),
            path_prefix=only,
            threads=4,
        )
    except engine.SnapshotNotFound:
        raise SelfBackupError(
            f"No self-backup snapshot {snapshot_id!r} there; --list shows the ones that exist."
        ) from None
    except (StorageError, engine.EngineError) as exc:
        raise SelfBackupError(f"Cannot read snapshot {snapshot_id}: {exc}") from None


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        raise SelfBackupError("The snapshot has no readable manifest.json.") from None
    if manifest.get("kind") != MANIFEST_KIND or manifest.get("format") != FORMAT_VERSION:
        raise SelfBackupError("The snapshot is not an AgencyOps self-backup this code reads.")
    return manifest


def self_snapshots_list(target: engine.Target) -> list[SelfSnapshot]:
    """Every self snapshot on the target, oldest first, with its manifest.json."""
    data_key = _open_key(target)
    found = []
    try:
        refs = engine.list_snapshots(target.store, target.base)
        for ref in refs:
            with _scratch() as directory:
                _fetch(target, data_key, ref.id, directory, MANIFEST_NAME)
                manifest = _read_manifest(directory)
            size = engine.load_manifest(target.store, target.base, data_key, ref.id).total_size
            found.append(SelfSnapshot(ref.id, ref.time, size, manifest))
    except (StorageError, engine.EngineError) as exc:
        raise SelfBackupError(f"Cannot list the self-backups: {exc}") from None
    return found


def database_tables() -> list[str]:
    """The tables of the database named by DATABASE_URL (empty means a fresh database)."""
    try:
        return list(connection.introspection.table_names())
    except DatabaseError as exc:
        raise SelfBackupError(f"Cannot open the database named by DATABASE_URL: {exc}") from None


def _load_postgresql(dump: Path, *, force: bool) -> None:
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if force:
        args += ["--clean", "--if-exists"]
    _run("pg_restore", [*args, f"--dbname={connection.settings_dict['NAME']}", str(dump)])


def _load_sqlite(dump: Path) -> None:
    # The backup API in reverse: the destination's pages are replaced as a whole, WAL and all.
    Path(_sqlite_name()).parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump)
    destination = sqlite3.connect(_sqlite_name(), timeout=20)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()


def _unknown_migrations(manifest: dict[str, Any]) -> list[str]:
    """Migrations the backed-up database had applied that this code does not have."""
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    return [
        f"{app_label}.{name}"
        for app_label, names in sorted(manifest.get("migrations", {}).items())
        for name in names
        if (app_label, name) not in known
    ]


def self_restore_load(
    target: engine.Target, snapshot_id: str, *, force: bool = False
) -> dict[str, Any]:
    """Load a self snapshot into the (empty) database named by DATABASE_URL; returns its
    manifest.json. Rules: the master key must open the repository before anything is touched;
    the database must have no table unless `force`; the vendor must match; this code must know
    every migration the backed-up database had applied (unless `force`); the dump's size and
    sha256 must match the manifest (the engine checks them against the snapshot too)."""
    data_key = _open_key(target)
    if snapshot_id == "latest":
        try:
            refs = engine.list_snapshots(target.store, target.base)
        except (StorageError, engine.EngineError) as exc:
            raise SelfBackupError(f"Cannot list the self-backups: {exc}") from None
        if not refs:
            raise SelfBackupError("The target holds no self-backup snapshot yet.")
        snapshot_id = refs[-1].id
    tables = database_tables()
    if tables and not force:
        raise SelfBackupError(
            f"The database named by DATABASE_URL is not empty ({len(tables)} tables). "
            "restore_self loads into an empty database: create a new one and point "
            "DATABASE_URL at it (or pass --force to overwrite this one)."
        )
    with _scratch() as directory:
        _fetch(target, data_key, snapshot_id, directory, "")
        manifest = _read_manifest(directory)
        database = manifest["database"]
        if database["vendor"] != connection.vendor:
            raise SelfBackupError(
                f"This snapshot holds a {database['vendor']} database, but DATABASE_URL names "
                f"a {connection.vendor} one; point it at an empty {database['vendor']} database."
            )
        unknown = _unknown_migrations(manifest)
        if unknown and not force:
            raise SelfBackupError(
                "This AgencyOps is older than the one that wrote the backup: it lacks the "
                f"migrations {', '.join(unknown[:5])}. Install the same or a newer version, "
                "then run restore_self again."
            )
        dump = directory / database["file"]
        if dump.stat().st_size != database["bytes"] or _sha256(dump) != database["sha256"]:
            raise SelfBackupError("The dump does not match manifest.json; it was not loaded.")
        connection.close()
        if database["vendor"] == "postgresql":
            _load_postgresql(dump, force=force)
        else:
            _load_sqlite(dump)
    manifest["snapshot_id"] = snapshot_id
    return manifest


def self_restore_check(manifest: dict[str, Any]) -> list[CountCheck]:
    """Compare the restored database with manifest.json: every count, and the signing public
    keys (as one row, 'signing keys', 1 = identical)."""
    connection.close()
    with connection.cursor() as cursor:
        restored = _inventory(cursor)
    checks = [
        CountCheck(name, manifest["counts"].get(name), restored["counts"].get(name))
        for name in sorted(set(manifest["counts"]) | set(restored["counts"]))
    ]
    for name in sorted(READERS):
        # A registered fact (lifecycle's signing public keys): one row, 1 = identical.
        same = name in manifest and manifest[name] == restored.get(name)
        checks.append(CountCheck(name.replace("_", " "), 1, 1 if same else 0))
    return checks
