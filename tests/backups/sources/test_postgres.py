"""PostgreSQL dumps and restores against the machine's real server (tests.dbservers), and the
shared pieces of backups.sources.databases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backups.sources import postgres
from backups.sources.databases import (
    META_FILE,
    DatabaseServer,
    database_name_check,
    row_counts_compare,
)
from backups.sources.postgres import (
    postgres_databases,
    postgres_drop,
    postgres_dump,
    postgres_restore,
    postgres_row_counts,
    postgres_server_version,
)
from backups.sources.process import (
    SourceCredentialsRefused,
    SourceError,
    SourceMissing,
    SourceUnreachable,
)
from tests.dbservers import (
    PG_SAMPLE_COUNTS,
    FakePostgres,
    PgScratch,
    ProcWatch,
    pg_content,
    pg_execute,
    pg_scratch,
    pg_server,
    unique_name,
)
from tests.s3server import free_port

__all__ = ["pg_scratch", "pg_server"]  # fixtures

HOSTILE_NAMES = [
    "",
    "-x",
    "--help",
    "a;drop",
    "a b",
    "a/../b",
    "a/b",
    "a\\b",
    "a..b",
    "a`b",
    "a'b",
    'a"b',
    "a\x00",
    "a\nb",
    "a\tb",
    "postgres://x",
    "host=evil",
    "a$b",
    "x" * 64,
    "ünï",
    "1abc",
    "a-",
    ".a",
]


def test_database_name_check_refuses_hostile_names() -> None:
    for name in HOSTILE_NAMES:
        with pytest.raises(ValueError, match="database name"):
            database_name_check(name)
    for name in ["ok", "Sales_2024", "_x", "x" * 63]:
        assert database_name_check(name) == name
    # One rule with registration's (kernel.sources): an identifier, nothing the tools parse.
    with pytest.raises(ValueError, match="database name"):
        database_name_check("a-b.c_d")


def test_hostile_names_never_reach_a_program(pg_server: DatabaseServer, tmp_path: Path) -> None:
    for name in ["-x", "a;drop", "host=evil", "postgres://x"]:
        with pytest.raises(ValueError, match="database name"):
            postgres_dump(pg_server, database=name, out=tmp_path / "out", scratch=tmp_path)
        with pytest.raises(ValueError, match="database name"):
            postgres_restore(pg_server, database=name, staged=tmp_path, scratch=tmp_path)
        with pytest.raises(ValueError, match="database name"):
            postgres_drop(pg_server, database=name)
    assert not (tmp_path / "out").exists()


def test_server_repr_hides_the_password() -> None:
    server = DatabaseServer(host="127.0.0.1", port=5432, username="u", password="hunter2-xyz")
    assert "hunter2-xyz" not in repr(server)
    assert "hunter2-xyz" not in str(server)
    assert "password=<set>" in repr(server)
    with pytest.raises(ValueError, match="network address"):
        DatabaseServer(host="/var/run/postgresql", port=5432, username="u")
    with pytest.raises(ValueError, match="one line"):
        DatabaseServer(host="127.0.0.1", port=5432, username="u\npassword=x")


def test_row_counts_compare_names_every_difference() -> None:
    assert row_counts_compare({"a": 1, "b": 0}, {"b": 0, "a": 1}) == []
    assert row_counts_compare({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 0}) == [
        "b: 2 rows expected, 5 found",
        "c: 3 rows expected, table missing",
        "d: not in the backup, 0 rows found",
    ]


def test_dump_then_restore_into_a_new_database_is_faithful(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create()
    out = tmp_path / "staged"
    meta = postgres_dump(pg_server, database=source, out=out, scratch=tmp_path / "scratch")

    assert meta == {
        "engine": "postgresql",
        "format": "directory",
        "server_version": postgres_server_version(pg_server),
        "dump_tool": meta["dump_tool"],
        "database": source,
        "encoding": "UTF8",
        "tables": PG_SAMPLE_COUNTS,
        "bytes": meta["bytes"],
    }
    assert re.fullmatch(r"15\.\d+", str(meta["server_version"]))  # the machine's server
    assert re.fullmatch(r"pg_dump 1[5-9]\.\d+", str(meta["dump_tool"]))
    assert json.loads((out / META_FILE).read_text()) == meta
    files = sorted((out / "dump").iterdir())
    assert meta["bytes"] == sum(path.stat().st_size for path in files) > 0
    # Uncompressed: each table's rows sit in the file as COPY text.
    assert any(b"Zo\xc3\xab \xf0\x9f\x98\x80" in path.read_bytes() for path in files)
    assert not list((tmp_path / "scratch").iterdir())  # the password file is gone

    target = pg_scratch.name()
    counts = postgres_restore(pg_server, database=target, staged=out, scratch=tmp_path / "scratch")
    assert counts == PG_SAMPLE_COUNTS
    assert row_counts_compare(meta["tables"], counts) == []
    assert pg_content(target) == pg_content(source)
    assert postgres_row_counts(pg_server, database=target) == PG_SAMPLE_COUNTS


def test_counts_are_those_of_the_snapshot_pg_dump_read(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path, monkeypatch
) -> None:
    """Rows added after the counts were taken but before pg_dump starts are in neither."""
    source = pg_scratch.create()
    real_run = postgres._tool_run

    def insert_then_run(*args, **kwargs) -> None:
        if kwargs.get("what") == "pg_dump":
            pg_execute(source, "INSERT INTO sales.orders (customer_id, placed) VALUES (1, now())")
        real_run(*args, **kwargs)

    monkeypatch.setattr(postgres, "_tool_run", insert_then_run)
    meta = postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert meta["tables"] == {**PG_SAMPLE_COUNTS, "sales.orders": 50}
    assert postgres_row_counts(pg_server, database=source)["sales.orders"] == 51

    monkeypatch.undo()
    counts = postgres_restore(
        pg_server, database=pg_scratch.name(), staged=tmp_path / "o", scratch=tmp_path
    )
    assert counts["sales.orders"] == 50


def test_restore_after_the_source_is_damaged_gives_back_the_original(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create()
    before = pg_content(source)
    meta = postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)

    pg_execute(
        source,
        "DROP VIEW public.customer_totals; DROP TABLE sales.orders;"
        " DELETE FROM public.customers WHERE id > 1;",
    )
    damaged = postgres_row_counts(pg_server, database=source)
    assert row_counts_compare(meta["tables"], damaged) == [
        "public.customers: 4 rows expected, 1 found",
        "sales.orders: 50 rows expected, table missing",
    ]

    target = pg_scratch.name()
    counts = postgres_restore(pg_server, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert counts == meta["tables"] == PG_SAMPLE_COUNTS
    assert pg_content(target) == before


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create()
    postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    occupied = pg_scratch.create(sample=False)
    pg_execute(occupied, "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (7)")

    with pytest.raises(SourceError, match="exists and is not empty"):
        postgres_restore(pg_server, database=occupied, staged=tmp_path / "o", scratch=tmp_path)
    assert postgres_row_counts(pg_server, database=occupied) == {"public.keep_me": 1}

    counts = postgres_restore(
        pg_server, database=occupied, staged=tmp_path / "o", scratch=tmp_path, force=True
    )
    assert counts == PG_SAMPLE_COUNTS  # keep_me is gone: the database was replaced

    empty = pg_scratch.create(sample=False)  # an empty database is used as it is
    assert postgres_restore(pg_server, database=empty, staged=tmp_path / "o", scratch=tmp_path) == (
        PG_SAMPLE_COUNTS
    )


def test_drop_removes_the_database(pg_server: DatabaseServer, pg_scratch: PgScratch) -> None:
    name = pg_scratch.create(sample=False)
    assert name in postgres_databases(pg_server)
    with postgres._connect(pg_server, name):  # a session open on it does not block the drop
        postgres_drop(pg_server, database=name)
    assert name not in postgres_databases(pg_server)
    postgres_drop(pg_server, database=name)  # dropping what is gone is fine
    assert re.fullmatch(r"15\.\d+", postgres_server_version(pg_server))


def test_restore_by_another_role(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    """Ownership and grants are not restored: a role that may only create databases restores a
    dump whose objects belong to postgres, and owns what it restored."""
    source = pg_scratch.create()
    postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    restorer = pg_scratch.role(password="restorer-pw")
    target = pg_scratch.name()
    counts = postgres_restore(restorer, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert counts == PG_SAMPLE_COUNTS
    assert pg_content(target) == pg_content(source)
    with postgres._connect(pg_server, target) as connection:
        owners = connection.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('public', 'sales')"
        ).fetchall()
    assert owners == [(restorer.username,)]


def test_two_dumps_of_an_unchanged_database_differ_only_in_the_toc_timestamp(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    """Every data file is byte-identical between runs, and so is the meta; toc.dat differs at
    most in its header's creation time (seven 5-byte integers at offsets 16-50), which
    pg_restore --list shows as "Archive created at"."""
    source = pg_scratch.create()
    first = postgres_dump(pg_server, database=source, out=tmp_path / "a", scratch=tmp_path)
    second = postgres_dump(pg_server, database=source, out=tmp_path / "b", scratch=tmp_path)
    assert first == second
    assert (tmp_path / "a" / META_FILE).read_bytes() == (tmp_path / "b" / META_FILE).read_bytes()
    names = sorted(path.name for path in (tmp_path / "a" / "dump").iterdir())
    assert names == sorted(path.name for path in (tmp_path / "b" / "dump").iterdir())
    assert len(names) == 1 + len(PG_SAMPLE_COUNTS)  # toc.dat and one file per table
    for name in names:
        a = (tmp_path / "a" / "dump" / name).read_bytes()
        b = (tmp_path / "b" / "dump" / name).read_bytes()
        if name != "toc.dat":
            assert a == b, name
            continue
        assert a[:5] == b"PGDMP"
        assert len(a) == len(b)
        differing = [offset for offset in range(len(a)) if a[offset] != b[offset]]
        assert all(16 <= offset <= 50 for offset in differing), differing


def test_an_unknown_role_is_refused_without_showing_the_password(
    pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create(sample=False)
    server = DatabaseServer(
        host="127.0.0.1", port=5432, username=unique_name("nobody"), password="pw-Secret-4711"
    )
    with pytest.raises(SourceCredentialsRefused) as refused:
        postgres_dump(server, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert "does not exist" in str(refused.value)
    assert "pw-Secret-4711" not in str(refused.value)
    with pytest.raises(SourceCredentialsRefused):
        postgres_databases(server)


def test_a_wrong_password_is_refused_and_each_client_sends_it_right(tmp_path: Path) -> None:
    """The local server trusts everyone, so a fake one asks for the password: psycopg and
    pg_dump (through the PGPASSFILE, with ':' and '\\' escaped) both send it exactly, and the
    refusal names no password."""
    password = r"p:w\x #'\"; sp ace"
    with FakePostgres() as fake:
        server = DatabaseServer(
            host="127.0.0.1", port=fake.port, username="alice", password=password
        )
        with pytest.raises(SourceCredentialsRefused) as refused:
            postgres_dump(server, database="db", out=tmp_path / "o", scratch=tmp_path)
        assert "password authentication failed" in str(refused.value)
        assert password not in str(refused.value)

        with (
            postgres._tool_environment(server, tmp_path) as env,
            pytest.raises(SourceCredentialsRefused) as refused,
        ):
            postgres._tool_run(server, ["pg_dump", "--dbname=db"], env=env, what="pg_dump")
        assert password not in str(refused.value)
    assert fake.passwords == [password, password]
    assert not list(tmp_path.glob("agencyops-pg-*"))

    with pytest.raises(SourceError, match="line break"):
        postgres_server_version(
            DatabaseServer(host="127.0.0.1", port=5432, username="postgres", password="a\nb")
        )


def test_a_closed_port_is_unreachable_quickly(tmp_path: Path) -> None:
    server = DatabaseServer(host="127.0.0.1", port=free_port(), username="postgres")
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="refused"):
        postgres_dump(server, database="anything", out=tmp_path / "o", scratch=tmp_path)
    with pytest.raises(SourceUnreachable):
        postgres_databases(server)
    assert time.monotonic() - started < 10


def test_a_missing_database(pg_server: DatabaseServer, tmp_path: Path) -> None:
    missing = unique_name("ao_missing")
    with pytest.raises(SourceMissing, match="does not exist"):
        postgres_dump(pg_server, database=missing, out=tmp_path / "o", scratch=tmp_path)
    with pytest.raises(SourceMissing):
        postgres_row_counts(pg_server, database=missing)
    assert not (tmp_path / "o" / "dump").exists()


def test_the_proc_watch_sees_a_secret_in_argv_or_environment() -> None:
    """The watcher the two leak tests rely on does find a leak."""
    secret = unique_name("leak")
    with ProcWatch(secret=secret, program=Path(sys.executable).name) as watch:
        subprocess.run(
            [sys.executable, "-c", "import time; time.sleep(0.3)", secret],
            env={"LEAKED": secret},
            check=True,
        )
    assert watch.seen > 0
    assert any(leak.endswith("cmdline") for leak in watch.leaks)
    assert any(leak.endswith("environ") for leak in watch.leaks)


def test_the_password_is_on_no_command_line_while_pg_dump_runs(
    pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create(sample=False, big_rows=200_000)
    password = f"pg-proc-{unique_name('secret')}"
    server = DatabaseServer(host="127.0.0.1", port=5432, username="postgres", password=password)
    with ProcWatch(secret=password, program="pg_dump") as watch:
        meta = postgres_dump(server, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert meta["tables"] == {"public.big": 200_000}
    assert watch.seen > 0, "pg_dump was never observed: the check proves nothing"
    assert watch.leaks == []


def test_a_server_newer_than_pg_dump_is_refused_by_name(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path, monkeypatch
) -> None:
    source = pg_scratch.create(sample=False)
    monkeypatch.setattr(postgres, "_server_version_of", lambda connection: "99.1")
    with pytest.raises(SourceError) as error:
        postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert re.search(
        r"pg_dump 15\.\d+ on the worker is older than the PostgreSQL 99\.1 server", str(error.value)
    )
    assert not (tmp_path / "o" / "dump").exists()

    monkeypatch.setattr(postgres, "_server_version_of", lambda connection: "9.6.24")
    postgres_dump(pg_server, database=source, out=tmp_path / "older", scratch=tmp_path)


def test_an_archive_pg_restore_cannot_read_is_refused_before_any_change(
    pg_server: DatabaseServer, pg_scratch: PgScratch, tmp_path: Path
) -> None:
    source = pg_scratch.create(sample=False)
    postgres_dump(pg_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    toc = tmp_path / "o" / "dump" / "toc.dat"
    header = bytearray(toc.read_bytes())
    header[6] = 99  # archive format 1.99, as a far newer pg_dump would write
    toc.write_bytes(bytes(header))
    target = pg_scratch.name()
    with pytest.raises(SourceError) as error:
        postgres_restore(pg_server, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert re.search(
        r"pg_restore 15\.\d+ cannot read this archive \(written by pg_dump 15\.\d+\)",
        str(error.value),
    )
    assert "unsupported version (1.99)" in str(error.value)
    assert target not in postgres_databases(pg_server)
