"""Logical backups of a tenant's MySQL/MariaDB database: one plain SQL file from mariadb-dump,
restored with the mariadb client into a new database and checked by exact row counts.

- One INSERT per row (--skip-extended-insert): an unchanged row is an unchanged line, so chunk
  boundaries stay put between runs, and the row counts are read from the dump itself (the
  client escapes newlines inside values, so a row is one line). No dump date, so an unchanged
  database gives the same bytes.
- The dump names no database (no --databases: no CREATE DATABASE or USE), so it restores into
  whatever name the restore gives.
- The user name and password reach the clients only through a 0600 option file given as
  --defaults-file (the first argument, and the only option file they read: nothing on the
  worker, not even a [client] password in /etc/mysql, is sent to a tenant's server).
- Events are not dumped: --events needs the EVENT privilege, and a backup user should not.
  Routines and triggers are.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from backups.sources.databases import (
    CONNECT_TIMEOUT,
    DatabaseServer,
    database_name_check,
    error_classified,
    meta_write,
    tree_bytes,
)
from backups.sources.process import (
    SourceError,
    base_env,
    private_directory,
    run,
    secret_file,
)

MARIADB = "mariadb"
MARIADB_DUMP = "mariadb-dump"
DUMP_FILE = "dump.sql"

_REFUSED = re.compile(
    r"Access denied for user|is not allowed to connect|Authentication plugin|"
    r"authentication method",
    re.IGNORECASE,
)
_MISSING = re.compile(r"Unknown database", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"Can't connect|Unknown (MySQL )?server host|Lost connection to server at 'handshake|"
    r"Connection refused|timed out",
    re.IGNORECASE,
)
# Engines whose rows mariadb-dump leaves out by default (--no-data-med): their data lives
# elsewhere, so they are not counted on either side.
_ENGINES_NOT_DUMPED = ("MRG_MyISAM", "MRG_ISAM", "CONNECT", "OQGRAPH", "SPIDER", "VP", "FEDERATED")

# Long enough for any statement head the count reads: a table name is at most 64 characters
# of up to 4 bytes, each backtick doubled.
_PREFIX_LIMIT = 1024
_CHUNK = 1 << 20
_LOCK = re.compile(rb"LOCK TABLES `((?:[^`]|``)+)` WRITE;")


def mysql_dump(
    server: DatabaseServer, *, database: str, out: Path, scratch: Path
) -> dict[str, object]:
    """Dump `database` into out/"dump.sql" (streamed to the file) and write its meta beside
    it; the row counts are counted in the dump, so they are exactly what it holds."""
    database_name_check(database)
    target = out / DUMP_FILE
    if target.exists():
        raise SourceError(f"{target} already exists: dump into a fresh directory")
    out.mkdir(parents=True, exist_ok=True)
    with _session(server, scratch) as session:
        tool_version = _tool_version(session)
        # Also the quick check of address, credentials and database: mariadb-dump has no
        # connect timeout of its own.
        server_version = _server_version_of(session, database=database)
        _dump_tool_check(tool_version, server_version)
        try:
            with target.open("wb") as handle:
                session.run(
                    MARIADB_DUMP,
                    [
                        "--single-transaction",
                        "--routines",
                        "--triggers",
                        "--skip-dump-date",
                        "--skip-extended-insert",
                        "--hex-blob",
                        # the LOCK TABLES ... UNLOCK TABLES around each table's rows are what
                        # the row count reads (on by default; said here because it is relied on)
                        "--add-locks",
                        # each table's rows in one transaction: a restore commits (and syncs)
                        # once per table, not once per row
                        "--no-autocommit",
                        "--default-character-set=utf8mb4",
                        "--",
                        database,
                    ],
                    stdout=handle,
                )
        except SourceError:
            target.unlink(missing_ok=True)
            raise
    meta: dict[str, object] = {
        "engine": "mysql",
        "format": "sql",
        "server_version": server_version,
        "dump_tool": f"{MARIADB_DUMP} {tool_version}",
        "database": database,
        "tables": mysql_dump_row_counts(dump=target),
        "bytes": tree_bytes(target),
    }
    meta_write(out, meta)
    return meta


def mysql_restore(
    server: DatabaseServer, *, database: str, staged: Path, force: bool = False, scratch: Path
) -> dict[str, int]:
    """Restore the dump in `staged` into the new database `database` and return its row
    counts. An existing database holding any table or view is refused unless `force`, which
    drops and recreates it. The user needs the rights the dump's objects ask for (a view or
    trigger keeps its DEFINER)."""
    database_name_check(database)
    dump = staged / DUMP_FILE
    if not dump.is_file():
        raise SourceError(f"{staged} holds no {DUMP_FILE}")
    with _session(server, scratch) as session:
        created = _database_prepare(session, database=database, force=force)
        try:
            with dump.open("rb") as handle:
                session.run(
                    MARIADB,
                    [
                        "--batch",
                        "--binary-mode",
                        "--default-character-set=utf8mb4",
                        f"--connect-timeout={CONNECT_TIMEOUT}",
                        f"--database={database}",
                    ],
                    stdin=handle,
                )
        except SourceError:
            if created:
                # Statements before the failure stay applied: leave no half-restored database
                # that could pass for a restore.
                with contextlib.suppress(SourceError):
                    session.query(f"DROP DATABASE IF EXISTS {_identifier(database)}")
            raise
        return _row_counts(session, database=database)


def mysql_drop(server: DatabaseServer, *, database: str, scratch: Path | None = None) -> None:
    """Drop `database` if it exists."""
    database_name_check(database)
    with _session(server, scratch) as session:
        session.query(f"DROP DATABASE IF EXISTS {_identifier(database)}")


def mysql_databases(server: DatabaseServer, *, scratch: Path | None = None) -> list[str]:
    """The names of the databases the user can see."""
    with _session(server, scratch) as session:
        rows = session.query(
            "SELECT HEX(schema_name) FROM information_schema.schemata ORDER BY schema_name"
        )
    return sorted(_unhex(row[0]) for row in rows)


def mysql_row_counts(
    server: DatabaseServer, *, database: str, scratch: Path | None = None
) -> dict[str, int]:
    """Rows per base table, all counted in one consistent snapshot."""
    database_name_check(database)
    with _session(server, scratch) as session:
        return _row_counts(session, database=database)


def mysql_server_version(server: DatabaseServer, *, scratch: Path | None = None) -> str:
    """The server's version string, e.g. "10.11.19-MariaDB-0+deb12u1"."""
    with _session(server, scratch) as session:
        return _server_version_of(session)


def mysql_dump_row_counts(*, dump: Path) -> dict[str, int]:
    """Rows per table in a dump written by mysql_dump, read in bounded memory (a row of a
    gigabyte is skipped over, not held): the INSERT lines between each table's LOCK TABLES and
    UNLOCK TABLES. Routine and trigger bodies (between DELIMITER ;; and DELIMITER ;) may hold
    INSERT lines of their own and are passed over."""
    counts: dict[str, int] = {}
    table: str | None = None
    insert = b""
    in_body = False
    for head in _line_heads(dump):
        if head.startswith(b"DELIMITER "):
            in_body = head.rstrip(b"\r") != b"DELIMITER ;"
        elif in_body:
            continue
        elif table is None:
            match = _LOCK.fullmatch(head.rstrip(b"\r"))
            if match:
                table = match.group(1).replace(b"``", b"`").decode("utf-8", errors="replace")
                counts.setdefault(table, 0)
                insert = b"INSERT INTO `" + match.group(1) + b"` "
        elif head.startswith(b"UNLOCK TABLES;"):
            table = None
        # "VALUES (" or, for a table with generated or invisible columns, a column list
        elif head.startswith(insert) and head[len(insert) :].startswith((b"VALUES (", b"(`")):
            counts[table] += 1
    return counts


def _line_heads(path: Path) -> Iterator[bytes]:
    """The first _PREFIX_LIMIT bytes of every line of the file (without the newline)."""
    head = bytearray()
    pending = False
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            start = 0
            while True:
                newline = chunk.find(b"\n", start)
                end = len(chunk) if newline < 0 else newline
                room = _PREFIX_LIMIT - len(head)
                if room > 0:
                    head += chunk[start : min(end, start + room)]
                if newline < 0:
                    pending = True
                    break
                yield bytes(head)
                head.clear()
                pending = False
                start = newline + 1
    if pending and head:
        yield bytes(head)


@dataclass(frozen=True)
class _Session:
    server: DatabaseServer
    options: Path
    home: Path

    def argv(self, tool: str, arguments: Sequence[str]) -> list[str]:
        # --defaults-file is only recognised as the very first argument.
        return [
            tool,
            f"--defaults-file={self.options}",
            f"--host={self.server.host}",
            f"--port={self.server.port}",
            "--protocol=TCP",
            *arguments,
        ]

    def run(
        self,
        tool: str,
        arguments: Sequence[str],
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> bytes:
        try:
            completed = run(
                self.argv(tool, arguments),
                env=base_env(self.home),
                secrets=[self.server.password],
                stdin=stdin,
                stdout=stdout,
                what=tool,
            )
        except SourceError as error:
            if type(error) is not SourceError:  # already precise (a timeout)
                raise
            raise error_classified(
                str(error), refused=_REFUSED, missing=_MISSING, unreachable=_UNREACHABLE
            ) from None
        return completed.stdout or b""

    def query(self, statements: str, *, database: str | None = None) -> list[list[str]]:
        """Rows of the statements' results, tab-separated fields (values are expected not to
        hold tabs or newlines: names travel as HEX())."""
        script = self.home / "statements.sql"
        script.write_text(statements, encoding="utf-8")
        arguments = [
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
            f"--connect-timeout={CONNECT_TIMEOUT}",
        ]
        if database is not None:
            arguments.append(f"--database={database}")
        with script.open("rb") as handle:
            output = self.run(MARIADB, arguments, stdin=handle)
        script.unlink()
        return [line.split("\t") for line in output.decode("utf-8").splitlines()]


@contextlib.contextmanager
def _session(server: DatabaseServer, scratch: Path | None) -> Iterator[_Session]:
    with private_directory(scratch, prefix="agencyops-mysql-") as home:
        options = secret_file(
            home,
            "client.cnf",
            f"[client]\nuser={_option_value(server.username)}\n"
            # Always written, even empty: no password from anywhere else is ever tried.
            f"password={_option_value(server.password)}\n",
        )
        yield _Session(server=server, options=options, home=home)


def _option_value(value: str) -> str:
    """A value for an option file, quoted so that '#', quotes, spaces and line breaks are
    read back exactly (the client unescapes \\\\, \\", \\n and \\r inside double quotes)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _unhex(value: str) -> str:
    return bytes.fromhex(value).decode("utf-8", errors="replace")


def _server_version_of(session: _Session, *, database: str | None = None) -> str:
    rows = session.query("SELECT VERSION()", database=database)
    if not rows or not rows[0]:
        raise SourceError("the server did not say its version")
    return rows[0][0]


def _tool_version(session: _Session) -> str:
    output = run([MARIADB_DUMP, "--version"], env=base_env(session.home), what=MARIADB_DUMP)
    # "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
    text = output.stdout.decode(errors="replace")
    match = re.search(r"Distrib (\d+\.\d+\.\d+)", text) or re.search(r"(\d+\.\d+\.\d+)", text)
    if match is None:
        raise SourceError(f"cannot tell the version of {MARIADB_DUMP} from {text.strip()!r}")
    return match.group(1)


def _series(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise SourceError(f"unrecognised server version {version!r}")
    return int(match.group(1)), int(match.group(2))


def _dump_tool_check(tool_version: str, server_version: str) -> None:
    """A MariaDB server of a newer series than the client may have what the client does not
    know how to dump (new types, new object kinds): refuse rather than leave it out. MySQL
    servers number their versions differently and are dumped as they are."""
    if "mariadb" not in server_version.lower():
        return
    if _series(tool_version) < _series(server_version):
        raise SourceError(
            f"{MARIADB_DUMP} {tool_version} on the worker is older than the MariaDB "
            f"{server_version} server and may miss what it cannot read: install the client "
            f"{'.'.join(map(str, _series(server_version)))} or newer on the worker"
        )


def _database_prepare(session: _Session, *, database: str, force: bool) -> bool:
    """Make `database` ready to restore into; True when it was created here."""
    rows = session.query(
        "SELECT COUNT(*) FROM information_schema.schemata"  # noqa: S608 - quoted by _string/_identifier (the client has no parameters)
        f" WHERE schema_name = {_string(database)};"
        "SELECT COUNT(*) FROM information_schema.tables"
        f" WHERE table_schema = {_string(database)};"
    )
    exists, relations = (int(row[0]) for row in rows)
    if exists and not relations:
        return False  # an empty database someone made ready: restore into it as it is
    if exists and not force:
        raise SourceError(
            f"database {database} exists and is not empty: restore into a new name, or force "
            "to replace it"
        )
    statements = f"CREATE DATABASE {_identifier(database)};"
    if exists:
        statements = f"DROP DATABASE {_identifier(database)};" + statements
    session.query(statements)
    return True


def _row_counts(session: _Session, *, database: str) -> dict[str, int]:
    excluded = ", ".join(_string(engine) for engine in _ENGINES_NOT_DUMPED)
    rows = session.query(
        "SELECT HEX(table_name) FROM information_schema.tables"  # noqa: S608 - quoted by _string/_identifier (the client has no parameters)
        f" WHERE table_schema = {_string(database)}"
        " AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')"
        f" AND (engine IS NULL OR engine NOT IN ({excluded}))"
        " ORDER BY table_name",
        database=database,  # the client says "Unknown database" for a missing one
    )
    tables = [_unhex(row[0]) for row in rows]
    if not tables:
        return {}
    # One snapshot for every count, as the dump read one.
    statements = [
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;",
        *(
            f"SELECT COUNT(*) FROM {_identifier(database)}.{_identifier(table)};"  # noqa: S608 - quoted
            for table in tables
        ),
        "COMMIT;",
    ]
    counts = session.query("\n".join(statements))
    if len(counts) != len(tables):
        raise SourceError(f"counted {len(counts)} of {len(tables)} tables in {database}")
    return {table: int(row[0]) for table, row in zip(tables, counts, strict=True)}
