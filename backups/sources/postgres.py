"""Logical backups of a tenant's PostgreSQL database: pg_dump's directory format, uncompressed
(one file per table, so an unchanged table deduplicates whole), and restores into a new
database checked by exact row counts.

- The row counts are exact for the dump: a REPEATABLE READ transaction exports its snapshot,
  counts every table inside it, and pg_dump reads that same snapshot while it stays open.
- The password reaches pg_dump/pg_restore through a 0600 PGPASSFILE in a private directory
  and psycopg as a connection parameter; never argv, never an inherited PG* variable.
- pg_dump refuses a server newer than itself mid-way; we refuse first, naming both versions.
- toc.dat carries the archive's creation time in its header (bytes 16-50), so it differs
  between two dumps of an unchanged database; every table's data file does not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from backups.sources.databases import (
    CONNECT_TIMEOUT,
    DatabaseServer,
    database_name_check,
    error_classified,
    meta_read,
    meta_write,
    tree_bytes,
)
from backups.sources.process import (
    SourceError,
    SourceMissing,
    base_env,
    private_directory,
    run,
    scrub,
    secret_file,
)

PG_DUMP = "pg_dump"
PG_RESTORE = "pg_restore"
DUMP_DIRECTORY = "dump"

# Where CREATE/DROP DATABASE run from; template1 for a role not allowed into "postgres".
_MAINTENANCE_DATABASES = ("postgres", "template1")
# A path that can never exist (a file below /dev/null): libpq then reads no password file at
# all, not even the server user's ~/.pgpass.
_NO_PASSFILE = "/dev/null/agencyops-no-passfile"
_APPLICATION_NAME = "agencyops-backup"

_REFUSED = re.compile(
    r'password authentication failed|role ".*" does not exist|no pg_hba\.conf entry|'
    r"no password supplied|is not permitted to log in|authentication failed",
    re.IGNORECASE,
)
_MISSING = re.compile(r'database ".*" does not exist', re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"connection refused|timeout expired|timed out|no route to host|network is unreachable|"
    r"could not translate host name|name or service not known",
    re.IGNORECASE,
)
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")

# Relations that are data: ordinary tables (partitions included; a partitioned parent holds no
# rows of its own and would count its partitions twice).
_TABLES_QUERY = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname
"""
# Anything a restore would collide with or silently join: tables, views, sequences, ...
_RELATIONS_QUERY = """
SELECT count(*)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
"""


def postgres_dump(
    server: DatabaseServer, *, database: str, out: Path, scratch: Path
) -> dict[str, object]:
    """Dump `database` into out/"dump" (directory format, uncompressed) and write its meta
    beside it; the meta's row counts are those of the very snapshot pg_dump read."""
    database_name_check(database)
    target = out / DUMP_DIRECTORY
    if target.exists():
        raise SourceError(f"{target} already exists: dump into a fresh directory")
    out.mkdir(parents=True, exist_ok=True)
    with _tool_environment(server, scratch) as env:
        tool_version = _tool_version(PG_DUMP, env=env)
        with _connect(server, database) as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            try:
                server_version = _server_version_of(connection)
                _dump_tool_check(tool_version, server_version)
                _timeouts_off(connection)
                encoding = _one(
                    connection,
                    "SELECT pg_encoding_to_char(encoding) FROM pg_database"
                    " WHERE datname = current_database()",
                )
                snapshot = _one(connection, "SELECT pg_export_snapshot()")
                tables = _row_counts_in(connection)
            except psycopg.Error as error:
                raise _query_error(server, error) from None
            try:
                _tool_run(
                    server,
                    [
                        PG_DUMP,
                        "--format=directory",
                        "--compress=0",
                        # The engine reads the files next; fsyncing them buys nothing.
                        "--no-sync",
                        f"--snapshot={snapshot}",
                        f"--file={target.absolute()}",
                        f"--dbname={database}",
                    ],
                    env=env,
                    what="pg_dump",
                )
            except SourceError:
                shutil.rmtree(target, ignore_errors=True)
                raise
            # The export only had to outlive pg_dump's import; a failure to close is harmless.
            with contextlib.suppress(psycopg.Error):
                connection.rollback()
    meta: dict[str, object] = {
        "engine": "postgresql",
        "format": "directory",
        "server_version": server_version,
        "dump_tool": f"{PG_DUMP} {tool_version}",
        "database": database,
        "encoding": encoding,
        "tables": tables,
        "bytes": tree_bytes(target),
    }
    meta_write(out, meta)
    return meta


def postgres_restore(
    server: DatabaseServer, *, database: str, staged: Path, force: bool = False, scratch: Path
) -> dict[str, int]:
    """Restore the dump in `staged` into the new database `database` and return its row
    counts. An existing database that holds any relation is refused unless `force`, which
    drops and recreates it; ownership and grants are not restored (the restoring role owns
    everything), so any role allowed to create a database can restore."""
    database_name_check(database)
    archive = staged / DUMP_DIRECTORY
    if not (archive / "toc.dat").is_file():
        raise SourceError(f"{staged} holds no pg_dump directory archive")
    try:
        written_by = str(meta_read(staged).get("dump_tool") or "an unknown pg_dump")
    except SourceError:  # only named in an error message: the archive itself decides
        written_by = "an unknown pg_dump"
    with _tool_environment(server, scratch) as env:
        restore_version = _tool_version(PG_RESTORE, env=env)
        try:
            # Reads only the table of contents: a format too new fails here, before any change.
            run(
                [PG_RESTORE, "--list", str(archive.absolute())],
                env=env,
                stdout=subprocess.DEVNULL,
                what=PG_RESTORE,
            )
        except SourceError as error:
            raise SourceError(
                f"{PG_RESTORE} {restore_version} cannot read this archive (written by "
                f"{written_by}): {error}"
            ) from None
        created = _database_prepare(server, database=database, force=force)
        try:
            _tool_run(
                server,
                [
                    PG_RESTORE,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={database}",
                    str(archive.absolute()),
                ],
                env=env,
                what=PG_RESTORE,
            )
        except SourceError:
            if created:
                # Nothing was restored (one transaction): leave no empty database behind.
                with contextlib.suppress(SourceError):
                    postgres_drop(server, database=database)
            raise
    return postgres_row_counts(server, database=database)


def postgres_drop(server: DatabaseServer, *, database: str) -> None:
    """Drop `database` if it exists, disconnecting its sessions."""
    database_name_check(database)
    with _maintenance(server) as connection:
        statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database))
        if connection.info.server_version >= 130000:  # WITH (FORCE) is PostgreSQL 13+
            statement = sql.SQL("{} WITH (FORCE)").format(statement)
        _execute(server, connection, statement)


def postgres_databases(server: DatabaseServer) -> list[str]:
    """The names of the server's databases (templates left out)."""
    with _maintenance(server) as connection:
        try:
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname"
            ).fetchall()
        except psycopg.Error as error:
            raise _query_error(server, error) from None
    return [str(row[0]) for row in rows]


def postgres_row_counts(server: DatabaseServer, *, database: str) -> dict[str, int]:
    """Rows per table ("schema.table"), all counted in one snapshot."""
    database_name_check(database)
    with _connect(server, database) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        try:
            _timeouts_off(connection)
            counts = _row_counts_in(connection)
            connection.rollback()
        except psycopg.Error as error:
            raise _query_error(server, error) from None
    return counts


def postgres_server_version(server: DatabaseServer) -> str:
    """The server's version number, e.g. "15.20"."""
    with _maintenance(server) as connection:
        try:
            return _server_version_of(connection)
        except psycopg.Error as error:
            raise _query_error(server, error) from None


def _server_version_of(connection: psycopg.Connection[Any]) -> str:
    # "15.20 (Debian 15.20-0+deb12u1)": the number alone is what versions are compared by.
    return _one(connection, "SHOW server_version").split()[0]


def _major(version: str) -> tuple[int, ...]:
    """The major version: 15 for "15.20", (9, 6) for "9.6.24" (before 10 it had two parts)."""
    match = _VERSION.match(version)
    if match is None:
        raise SourceError(f"unrecognised PostgreSQL version {version!r}")
    first = int(match.group(1))
    if first >= 10 or match.group(2) is None:
        return (first,)
    return (first, int(match.group(2)))


def _dump_tool_check(tool_version: str, server_version: str) -> None:
    if _major(tool_version) < _major(server_version):
        raise SourceError(
            f"{PG_DUMP} {tool_version} on the worker is older than the PostgreSQL "
            f"{server_version} server and cannot dump it: install pg_dump "
            f"{'.'.join(map(str, _major(server_version)))} or newer on the worker"
        )


def _tool_version(tool: str, *, env: dict[str, str]) -> str:
    output = run([tool, "--version"], env=env, what=tool).stdout.decode(errors="replace")
    # "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    match = re.search(r"\)\s+(\d+(?:\.\d+)*)", output)
    if match is None:
        raise SourceError(f"cannot tell the version of {tool} from {output.strip()!r}")
    return match.group(1)


def _address(server: DatabaseServer) -> dict[str, str]:
    # hostaddr skips name resolution entirely; a name (an operator's own setup) still works.
    try:
        ipaddress.ip_address(server.host)
    except ValueError:
        return {"host": server.host}
    return {"hostaddr": server.host}


def _password_check(server: DatabaseServer) -> None:
    if "\n" in server.password or "\r" in server.password:
        # A password file holds one entry per line; the password must not go anywhere else.
        raise SourceError("a PostgreSQL password with a line break is not supported")


def _pgpass_line(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    # Any host, port, database and user: the file is written for this one connection.
    return f"*:*:*:*:{escaped}\n"


@contextlib.contextmanager
def _tool_environment(server: DatabaseServer, scratch: Path) -> Iterator[dict[str, str]]:
    """The environment pg_dump/pg_restore run in: the server's address and user, and the
    password in a 0600 file that is removed when the block ends."""
    _password_check(server)
    with private_directory(scratch, prefix="agencyops-pg-") as home:
        extra = {f"PG{key.upper()}": value for key, value in _address(server).items()} | {
            "PGPORT": str(server.port),
            "PGUSER": server.username,
            "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "PGSSLMODE": "prefer",
            "PGGSSENCMODE": "disable",
            "PGAPPNAME": _APPLICATION_NAME,
            "PGPASSFILE": _NO_PASSFILE,
        }
        if server.password:
            extra["PGPASSFILE"] = str(secret_file(home, "pgpass", _pgpass_line(server.password)))
        yield base_env(home, extra)


def _tool_run(
    server: DatabaseServer,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    what: str,
    stdout: IO[bytes] | int | None = None,
) -> None:
    try:
        run(argv, env=env, secrets=[server.password], stdout=stdout, what=what)
    except SourceError as error:
        if type(error) is not SourceError:  # already precise (a timeout)
            raise
        raise _classified(str(error)) from None


def _classified(message: str) -> SourceError:
    return error_classified(message, refused=_REFUSED, missing=_MISSING, unreachable=_UNREACHABLE)


def _query_error(server: DatabaseServer, error: psycopg.Error) -> SourceError:
    return _classified(scrub(f"PostgreSQL: {error}".strip(), [server.password]))


def _open(
    server: DatabaseServer, database: str, *, autocommit: bool = False
) -> psycopg.Connection[Any]:
    _password_check(server)
    try:
        # Every setting libpq would otherwise take from this process's PG* variables is given:
        # an empty password stays empty rather than becoming the worker's own PGPASSWORD.
        params: dict[str, Any] = {
            **_address(server),
            "port": server.port,
            "user": server.username,
            "password": server.password,
            "passfile": _NO_PASSFILE,
            "dbname": database,
            "connect_timeout": CONNECT_TIMEOUT,
            "sslmode": "prefer",
            "gssencmode": "disable",
            "application_name": _APPLICATION_NAME,
            "client_encoding": "UTF8",
        }
        return psycopg.connect(autocommit=autocommit, **params)
    except psycopg.Error as error:
        raise _query_error(server, error) from None


def _connect(
    server: DatabaseServer, database: str, *, autocommit: bool = False
) -> contextlib.closing[psycopg.Connection[Any]]:
    return contextlib.closing(_open(server, database, autocommit=autocommit))


def _maintenance(server: DatabaseServer) -> contextlib.closing[psycopg.Connection[Any]]:
    """An autocommit connection to a database that always exists, for CREATE/DROP DATABASE."""
    *first, last = _MAINTENANCE_DATABASES
    for name in first:
        with contextlib.suppress(SourceMissing):
            return _connect(server, name, autocommit=True)
    return _connect(server, last, autocommit=True)


def _one(connection: psycopg.Connection[Any], query: str) -> str:
    row = connection.execute(query).fetchone()
    if row is None:
        raise SourceError(f"PostgreSQL returned no row for {query.split()[0]}")
    return str(row[0])


def _execute(
    server: DatabaseServer, connection: psycopg.Connection[Any], statement: sql.Composed
) -> None:
    try:
        connection.execute(statement)
    except psycopg.Error as error:
        raise _query_error(server, error) from None


def _timeouts_off(connection: psycopg.Connection[Any]) -> None:
    # As pg_dump does for itself: counting a large table may take longer than a role's
    # statement_timeout, and the dump's transaction stays idle while pg_dump runs for hours.
    connection.execute(
        "SET statement_timeout = 0; SET lock_timeout = 0;"
        " SET idle_in_transaction_session_timeout = 0"
    )


def _row_counts_in(connection: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for schema, table in connection.execute(_TABLES_QUERY).fetchall():
        row = connection.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def _database_prepare(server: DatabaseServer, *, database: str, force: bool) -> bool:
    """Make `database` ready to restore into; True when it was created here."""
    with _maintenance(server) as connection:
        try:
            exists = (
                connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [database]
                ).fetchone()
                is not None
            )
        except psycopg.Error as error:
            raise _query_error(server, error) from None
    if exists:
        with _connect(server, database) as connection:
            try:
                relations = int(_one(connection, _RELATIONS_QUERY))
            except psycopg.Error as error:
                raise _query_error(server, error) from None
        if not relations:
            return False  # an empty database someone made ready: restore into it as it is
        if not force:
            raise SourceError(
                f'database "{database}" exists and is not empty: restore into a new name, or '
                "force to replace it"
            )
        postgres_drop(server, database=database)
    with _maintenance(server) as connection:
        # template0: nothing a site added to template1 can collide with the restored objects.
        _execute(
            server,
            connection,
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database)),
        )
    return True
