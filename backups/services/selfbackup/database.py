"""Reading the database: one consistent dump (PostgreSQL: pg_dump from an exported snapshot;
SQLite: the online backup API) and the inventory manifest.json records, read in the dump's own
snapshot."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models

from backups.services.selfbackup.common import (
    DUMP_NAMES,
    FORMAT_VERSION,
    MANIFEST_KIND,
    MANIFEST_NAME,
    SelfBackupError,
)

# What manifest.json counts, and what restore_self compares after loading (app label.Model).
# The apps below `lifecycle` are listed here; an app above adds its own models and readers
# with `inventory_register` from its AppConfig.ready, so this package names none of them.
COUNTED: dict[str, str] = {
    "organizations": "clients.Organization",
    "users": "auth.User",
    "clients": "clients.Client",
    "locations": "clients.StorageLocation",
    "datasets": "clients.Dataset",
    "snapshots": "backups.Snapshot",
}
# name -> a function of a DB-API cursor giving a JSON value the restore must match exactly.
READERS: dict[str, Callable[[Any], Any]] = {}


def inventory_register(
    *,
    counted: Mapping[str, type[models.Model]] = MappingProxyType({}),
    readers: Mapping[str, Callable[[Any], Any]] = MappingProxyType({}),
) -> None:
    """Add an app's models to manifest.json's counts and its exact-match facts (the signing
    public keys) to the inventory, read in the dump's own snapshot."""
    COUNTED.update({name: model._meta.label for name, model in counted.items()})
    READERS.update(readers)


def quote_name(name: str) -> str:
    """A SQL identifier, double-quoted (for readers that read raw tables)."""
    return '"' + name.replace('"', '""') + '"'


_PG_ENV = {
    "HOST": "PGHOST",
    "PORT": "PGPORT",
    "USER": "PGUSER",
    "PASSWORD": "PGPASSWORD",
    "NAME": "PGDATABASE",
}
_PG_OPTION_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def _inventory(cursor: Any) -> dict[str, Any]:
    """Counts, applied migrations and the registered readers' facts, read through `cursor` (any
    DB-API cursor: the dump's own snapshot, a SQLite copy, or the restored database). Raw SQL
    on the models' tables, because the cursor is not always Django's connection."""
    counts: dict[str, int] = {}
    for name, label in COUNTED.items():
        model = apps.get_model(settings.AUTH_USER_MODEL if label == "auth.User" else label)
        table = quote_name(model._meta.db_table)
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608  # a quoted table name
        counts[name] = int(cursor.fetchone()[0])
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    migrations: dict[str, list[str]] = {}
    for app_label, migration in cursor.fetchall():
        migrations.setdefault(str(app_label), []).append(str(migration))
    facts = {name: reader(cursor) for name, reader in sorted(READERS.items())}
    return {"counts": counts, "migrations": migrations, **facts}


def _pg_env() -> dict[str, str]:
    """libpq variables for pg_dump/pg_restore: the password never appears on a command line."""
    settings_dict = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, variable in _PG_ENV.items():
        if settings_dict.get(key):
            env[variable] = str(settings_dict[key])
    for option, variable in _PG_OPTION_ENV.items():
        value = (settings_dict.get("OPTIONS") or {}).get(option)
        if value is not None:
            env[variable] = str(value)
    return env


def _run(tool: str, args: list[str]) -> None:
    path = shutil.which(tool)
    if path is None:
        raise SelfBackupError(
            f"{tool} is not installed (or not on PATH); install the PostgreSQL client tools of "
            "the server's major version."
        )
    # Fixed program and arguments, no shell; connection settings travel in the environment.
    done = subprocess.run(  # noqa: S603
        [path, *args], env=_pg_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SelfBackupError(f"{tool} failed: {done.stderr.strip()[-2000:]}")


def _dump_postgresql(path: Path) -> dict[str, Any]:
    """pg_dump from a snapshot this connection exports, and the inventory read in that same
    snapshot: manifest.json's counts describe exactly what the dump holds."""
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            inventory = _inventory(cursor)
            _run(
                "pg_dump",
                [
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={path}",
                ],
            )
            cursor.execute("COMMIT")
    finally:
        raw.close()
    return inventory


def _sqlite_name() -> str:
    return str(connection.settings_dict["NAME"])


def _dump_sqlite(path: Path) -> dict[str, Any]:
    """SQLite's online backup API from a connection of its own (committed data, consistent
    even while others write); the inventory is read from the copy itself."""
    source = sqlite3.connect(_sqlite_name(), timeout=20)
    copy = sqlite3.connect(path)
    try:
        source.backup(copy)
        return _inventory(copy.cursor())
    finally:
        copy.close()
        source.close()


def _version() -> str:
    try:
        with (Path(settings.BASE_DIR) / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private (0700) directory for plaintext dumps, removed whatever happens."""
    root = Path(settings.AGENCYOPS_SCRATCH_DIR)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agencyops-self-", dir=root) as directory:
        yield Path(directory)


def _dump(directory: Path, created: datetime) -> dict[str, Any]:
    vendor = connection.vendor
    if vendor not in DUMP_NAMES:
        raise SelfBackupError(f"Self-backup supports PostgreSQL and SQLite, not {vendor}.")
    dump = directory / DUMP_NAMES[vendor]
    inventory = _dump_postgresql(dump) if vendor == "postgresql" else _dump_sqlite(dump)
    manifest = {
        "kind": MANIFEST_KIND,
        "format": FORMAT_VERSION,
        "created_at": created.isoformat(),
        "agencyops_version": _version(),
        "database": {
            "vendor": vendor,
            "file": dump.name,
            "bytes": dump.stat().st_size,
            "sha256": _sha256(dump),
        },
        **inventory,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
