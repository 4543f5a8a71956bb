"""The machine's real database servers for tests: PostgreSQL at 127.0.0.1:5432 (user postgres,
trust authentication) and MariaDB at 127.0.0.1:3306 (root, no password).

Tests run in several processes at once against the same servers, so everything a test makes
(databases, roles, users) has a uuid name, is recorded on its scratch object and is dropped by
that object alone: nothing here touches a name it did not create.

Also here: a sample database per engine with the awkward parts of real ones (several schemas,
binary columns, text with newlines, quotes, NULLs and non-ASCII, views, sequences, indexes,
foreign keys, triggers), a content fingerprint to compare a restore with its source, a /proc
watcher that looks for a secret in other processes' command lines while a dump runs, and a
fake PostgreSQL server that asks for a password and records it (the real one trusts every
local connection, so it never asks).
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from backups.sources.databases import DatabaseServer

PG_HOST = "127.0.0.1"
PG_PORT = 5432
MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306


def unique_name(prefix: str = "ao_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@pytest.fixture
def pg_server() -> DatabaseServer:
    return DatabaseServer(host=PG_HOST, port=PG_PORT, username="postgres")


@pytest.fixture
def mysql_server() -> DatabaseServer:
    return DatabaseServer(host=MYSQL_HOST, port=MYSQL_PORT, username="root")


# --- PostgreSQL ---

PG_SAMPLE = r"""
CREATE SCHEMA sales;
CREATE SCHEMA "Inventory Dept";
CREATE TABLE public.customers (
    id serial PRIMARY KEY, name text NOT NULL, note text, photo bytea, tags text[]
);
INSERT INTO public.customers (name, note, photo, tags) VALUES
    ('Ada', E'line one\nline two\r\nend', '\x00ff0a27225c'::bytea, ARRAY['a', 'b']),
    ('O''Brien "the quote"', 'it''s; DROP TABLE x; --', NULL, NULL),
    ('Zoë 😀 ünïcødé', NULL, ''::bytea, '{}'),
    (E'back\\slash\ttab', E'copy escape \\N and \\. alone', '\x5c4e'::bytea, ARRAY[NULL]::text[]);
CREATE TABLE sales.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id int NOT NULL REFERENCES public.customers (id),
    amount numeric(10, 2),
    placed timestamptz NOT NULL
);
CREATE INDEX orders_placed ON sales.orders (placed);
INSERT INTO sales.orders (customer_id, amount, placed)
    SELECT 1 + g % 4, g * 1.25, timestamptz '2026-01-01 00:00+00' + g * interval '1 hour'
    FROM generate_series(1, 50) g;
CREATE SEQUENCE public.invoice_no START 1000;
SELECT setval('public.invoice_no', 1234);
CREATE VIEW public.customer_totals AS
    SELECT c.name, sum(o.amount) AS total
    FROM public.customers c JOIN sales.orders o ON o.customer_id = c.id GROUP BY c.name;
CREATE TABLE "Inventory Dept"."Stock Items" (sku text PRIMARY KEY, qty int);
INSERT INTO "Inventory Dept"."Stock Items" VALUES ('sku-1', 3), ('sku-2', NULL);
CREATE TABLE public.empty_table (id int);
"""

PG_SAMPLE_COUNTS = {
    "Inventory Dept.Stock Items": 2,
    "public.customers": 4,
    "public.empty_table": 0,
    "sales.orders": 50,
}


def pg_connect(database: str = "postgres", *, user: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=database, autocommit=True)


def pg_execute(database: str, statements: str) -> None:
    with pg_connect(database) as connection:
        connection.execute(statements)


def pg_content(database: str) -> dict[str, str]:
    """What a faithful restore reproduces: each table's rows (md5 of them sorted), sequence
    positions, view, index and constraint definitions."""
    content: dict[str, str] = {}
    with pg_connect(database) as connection:
        tables = connection.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
            " AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchall()
        for schema, table in tables:
            row = connection.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                    " FROM {}.{} t"
                ).format(sql.Identifier(schema), sql.Identifier(table))
            ).fetchone()
            assert row is not None
            content[f"table {schema}.{table}"] = row[0]
        for query, label in [
            ("SELECT schemaname || '.' || sequencename, last_value::text FROM pg_sequences", "seq"),
            (
                "SELECT schemaname || '.' || viewname, definition FROM pg_views"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                "view",
            ),
            (
                "SELECT schemaname || '.' || indexname, indexdef FROM pg_indexes"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                "index",
            ),
            (
                "SELECT n.nspname || '.' || c.conname, pg_get_constraintdef(c.oid)"
                " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
                "constraint",
            ),
        ]:
            for name, value in connection.execute(query).fetchall():
                content[f"{label} {name}"] = str(value)
    return content


@dataclass
class PgScratch:
    """Databases and roles one test makes; `cleanup` drops them (and only them)."""

    server: DatabaseServer
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def name(self) -> str:
        """A fresh database name, dropped at the end whether or not anything creates it."""
        name = unique_name()
        self.databases.append(name)
        return name

    def create(self, *, sample: bool = True, big_rows: int = 0) -> str:
        name = self.name()
        with pg_connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if sample:
            pg_execute(name, PG_SAMPLE)
        if big_rows:
            with pg_connect(name) as connection:
                connection.execute(
                    "CREATE TABLE public.big AS SELECT g AS id, repeat('x', 200) AS payload"
                    " FROM generate_series(1, %s) g",
                    [big_rows],
                )
        return name

    def role(self, *, password: str) -> DatabaseServer:
        """A login role that may create databases (not a superuser)."""
        name = unique_name("ao_r")
        self.roles.append(name)
        with pg_connect() as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
        return DatabaseServer(host=PG_HOST, port=PG_PORT, username=name, password=password)

    def cleanup(self) -> None:
        with pg_connect() as connection:
            for name in self.databases:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            for role in self.roles:
                connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def pg_scratch(pg_server: DatabaseServer) -> Iterator[PgScratch]:
    scratch = PgScratch(server=pg_server)
    try:
        yield scratch
    finally:
        scratch.cleanup()


# --- MariaDB ---

MYSQL_SAMPLE = r"""
CREATE TABLE customers (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    note TEXT NULL,
    photo BLOB NULL,
    name_upper VARCHAR(100) AS (UPPER(name)) VIRTUAL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO customers (name, note, photo) VALUES
    ('Ada', 'line one\nline two\r\nend', X'00FF0A27225C'),
    ('O''Brien "the quote"', 'it''s; DROP TABLE x; --', NULL),
    ('Zoë 😀 ünïcødé', NULL, ''),
    ('back\\slash\ttab', 'a\nINSERT INTO `customers` VALUES (99);\nUNLOCK TABLES;', X'00'),
    ('nul', 'before\0after', X'0D0A');
CREATE TABLE orders (
    id INT AUTO_INCREMENT PRIMARY KEY,
    customer_id INT NOT NULL,
    amount DECIMAL(10, 2),
    placed DATETIME NOT NULL,
    INDEX orders_placed (placed),
    CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE audit (order_id INT, what VARCHAR(20)) ENGINE=InnoDB;
DELIMITER ;;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
INSERT INTO `audit` VALUES (NEW.id, 'trigger');;
CREATE PROCEDURE audit_note()
BEGIN
INSERT INTO `audit` VALUES (0, 'procedure');
END;;
DELIMITER ;
INSERT INTO orders (customer_id, amount, placed)
    SELECT 1 + seq % 5, seq * 1.25, '2026-01-01' + INTERVAL seq HOUR FROM seq_1_to_50;
CREATE VIEW customer_totals AS
    SELECT c.name, SUM(o.amount) AS total
    FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name;
CREATE SEQUENCE invoice_no START WITH 1000;
CREATE TABLE `Stock Items` (sku VARCHAR(20) PRIMARY KEY, qty INT NULL) ENGINE=InnoDB;
INSERT INTO `Stock Items` VALUES ('sku-1', 3), ('sku-2', NULL);
CREATE TABLE empty_table (id INT) ENGINE=InnoDB;
"""

# audit: one row per order, written by the trigger
MYSQL_SAMPLE_COUNTS = {
    "Stock Items": 2,
    "audit": 50,
    "customers": 5,
    "empty_table": 0,
    "orders": 50,
}


def mysql_sql(statements: str, *, database: str | None = None) -> list[list[str]]:
    """Run statements as root through the mariadb client; the rows printed, tab-separated."""
    argv = [
        "mariadb",
        "--no-defaults",
        f"--host={MYSQL_HOST}",
        f"--port={MYSQL_PORT}",
        "--protocol=TCP",
        "--user=root",
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]
    if database:
        argv.append(f"--database={database}")
    completed = subprocess.run(argv, input=statements.encode(), capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return [line.split("\t") for line in completed.stdout.decode().splitlines()]


def mysql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def mysql_content(database: str) -> dict[str, str]:
    """Each base table's rows (md5 of them sorted, every value as hex) and the definitions of
    views, triggers, routines, indexes and foreign keys (the database's own name taken out)."""
    content: dict[str, str] = {}
    literal = mysql_string(database)
    columns: dict[str, list[str]] = {}
    for table, column in mysql_sql(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c"  # noqa: S608
        " JOIN information_schema.tables t"
        " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        f" WHERE c.table_schema = {literal} AND t.table_type = 'BASE TABLE'"
        " ORDER BY c.table_name, c.ordinal_position"
    ):
        columns.setdefault(table, []).append(column)
    for table, names in columns.items():
        fields = ", ".join(f"HEX(`{name}`)" for name in names)
        order = ", ".join(str(position + 1) for position in range(len(names)))
        rows = mysql_sql(f"SELECT {fields} FROM `{database}`.`{table}` ORDER BY {order}")  # noqa: S608
        text = "\n".join("\t".join(row) for row in rows)
        content[f"table {table}"] = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a fingerprint
    for label, fields, view, schema_column in [
        ("view", "table_name, view_definition", "views", "table_schema"),
        ("trigger", "trigger_name, action_statement", "triggers", "trigger_schema"),
        ("routine", "routine_name, routine_definition", "routines", "routine_schema"),
        (
            "index",
            "CONCAT(table_name, '.', index_name, '.', seq_in_index), column_name",
            "statistics",
            "table_schema",
        ),
        (
            "fk",
            "constraint_name, CONCAT(table_name, '>', referenced_table_name)",
            "referential_constraints",
            "constraint_schema",
        ),
    ]:
        query = f"SELECT {fields} FROM information_schema.{view} WHERE {schema_column} = {literal}"  # noqa: S608 - fixed text and a quoted literal
        for row in mysql_sql(query):
            content[f"{label} {row[0]}"] = row[1].replace(f"`{database}`.", "")
    return content


@dataclass
class MysqlScratch:
    """Databases and users one test makes; `cleanup` drops them (and only them)."""

    server: DatabaseServer
    databases: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)

    def name(self) -> str:
        name = unique_name()
        self.databases.append(name)
        return name

    def create(self, *, sample: bool = True, big_rows: int = 0) -> str:
        name = self.name()
        mysql_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        if sample:
            mysql_sql(MYSQL_SAMPLE, database=name)
        if big_rows:
            # seq_1_to_<n>: the sequence engine's table of 1..n
            mysql_sql(
                "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(200)) ENGINE=InnoDB;"  # noqa: S608 - an int
                f" INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_{int(big_rows)};",
                database=name,
            )
        return name

    def user(self, *, password: str, databases: list[str]) -> DatabaseServer:
        """A user with a password and every right on `databases` (which need not exist)."""
        name = unique_name("u")[:32]
        self.users.append(name)
        grants = "".join(f"GRANT ALL ON `{database}`.* TO '{name}'@'%';" for database in databases)
        mysql_sql(f"CREATE USER '{name}'@'%' IDENTIFIED BY {mysql_string(password)};{grants}")
        return DatabaseServer(host=MYSQL_HOST, port=MYSQL_PORT, username=name, password=password)

    def cleanup(self) -> None:
        statements = [f"DROP DATABASE IF EXISTS `{name}`;" for name in self.databases]
        statements += [f"DROP USER IF EXISTS '{name}'@'%';" for name in self.users]
        if statements:
            mysql_sql("".join(statements))


@pytest.fixture
def mysql_scratch(mysql_server: DatabaseServer) -> Iterator[MysqlScratch]:
    scratch = MysqlScratch(server=mysql_server)
    try:
        yield scratch
    finally:
        scratch.cleanup()


# --- watching other processes ---


@dataclass
class ProcWatch:
    """Samples every process's command line (and, for our own user's, environment) from /proc
    in a thread, recording which ones hold `secret` and how often `program` was seen, so a
    check for a leak cannot pass because the program never ran while we looked."""

    secret: str
    program: str
    seen: int = 0
    leaks: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ProcWatch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        secret = self.secret.encode()
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name == str(os.getpid()):
                    continue
                try:
                    cmdline = Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                argv = cmdline.split(b"\0")
                # A wrapper script (Debian's pg_wrapper) shows as "perl /usr/bin/pg_dump ...".
                if any(os.path.basename(arg) == self.program.encode() for arg in argv[:2]):
                    self.seen += 1
                if secret in cmdline:
                    self.leaks.append(f"{entry.name} cmdline")
                try:
                    environ = Path(entry.path, "environ").read_bytes()
                except OSError:
                    continue
                if secret in environ:
                    self.leaks.append(f"{entry.name} environ")


# --- a PostgreSQL server that asks for a password ---

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


class FakePostgres:
    """Speaks just enough of the PostgreSQL protocol to ask for a cleartext password, record
    it and refuse it ("password authentication failed", SQLSTATE 28P01)."""

    def __init__(self) -> None:
        self.passwords: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self._socket.settimeout(0.1)  # accept() wakes to see _stop (close() would not wake it)
        self.port: int = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakePostgres:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    self._handle(connection)
                except (OSError, struct.error):
                    continue

    def _handle(self, connection: socket.socket) -> None:
        while True:
            (length,) = struct.unpack("!I", _exactly(connection, 4))
            body = _exactly(connection, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
            connection.sendall(b"N")  # no TLS, no GSSAPI: carry on in the clear
        fields = body[4:].split(b"\0")
        params = dict(zip(fields[0::2], fields[1::2], strict=False))
        user = params.get(b"user", b"").decode()
        connection.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = _exactly(connection, 1)
        (length,) = struct.unpack("!I", _exactly(connection, 4))
        password = _exactly(connection, length - 4)
        if kind == b"p":
            self.passwords.append(password.rstrip(b"\0").decode())
        message = (
            b"SFATAL\0VFATAL\0C28P01\0M"
            + f'password authentication failed for user "{user}"'.encode()
            + b"\0\0"
        )
        connection.sendall(b"E" + struct.pack("!I", len(message) + 4) + message)


def _exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data
