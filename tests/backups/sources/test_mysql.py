"""MariaDB dumps and restores against the machine's real server (tests.dbservers)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from backups.sources import mysql
from backups.sources.databases import META_FILE, DatabaseServer, row_counts_compare
from backups.sources.mysql import (
    mysql_databases,
    mysql_drop,
    mysql_dump,
    mysql_dump_row_counts,
    mysql_restore,
    mysql_row_counts,
    mysql_server_version,
)
from backups.sources.process import (
    SourceCredentialsRefused,
    SourceError,
    SourceMissing,
    SourceUnreachable,
)
from tests.dbservers import (
    MYSQL_SAMPLE_COUNTS,
    MysqlScratch,
    ProcWatch,
    mysql_content,
    mysql_scratch,
    mysql_server,
    mysql_sql,
    unique_name,
)
from tests.s3server import free_port

__all__ = ["mysql_scratch", "mysql_server"]  # fixtures

# Quotes, backslashes, '#', ';', spaces and a line break: all must survive the option file.
AWKWARD_PASSWORD = "p\"w\\x #'; sp ace\nnext"


def test_dump_then_restore_into_a_new_database_is_faithful(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create()
    out = tmp_path / "staged"
    meta = mysql_dump(mysql_server, database=source, out=out, scratch=tmp_path / "scratch")

    assert meta == {
        "engine": "mysql",
        "format": "sql",
        "server_version": mysql_server_version(mysql_server),
        "dump_tool": meta["dump_tool"],
        "database": source,
        "tables": MYSQL_SAMPLE_COUNTS,
        "bytes": (out / "dump.sql").stat().st_size,
    }
    assert re.fullmatch(r"10\.11\.\d+-MariaDB.*", str(meta["server_version"]))  # the machine's
    assert re.fullmatch(r"mariadb-dump 10\.11\.\d+", str(meta["dump_tool"]))
    assert json.loads((out / META_FILE).read_text()) == meta
    # The counts read from the dump are the server's own.
    assert mysql_row_counts(mysql_server, database=source) == MYSQL_SAMPLE_COUNTS
    assert not list((tmp_path / "scratch").iterdir())  # the option file is gone

    dump = (out / "dump.sql").read_bytes()
    lines = dump.split(b"\n")
    # No database named in it: it restores under any name.
    assert not any(line.startswith((b"USE ", b"CREATE DATABASE")) for line in lines)
    assert all(line.startswith(b"-- ") for line in lines if source.encode() in line)
    # Uncompressed, one row a line, binary as hex, a newline inside a value escaped.
    assert any(
        line.startswith(b"INSERT INTO `customers` VALUES (1,'Ada','line one\\nline two\\r\\nend'")
        for line in lines
    )
    assert any(line.startswith(b"INSERT INTO `audit` VALUES (0, 'procedure')") for line in lines)

    target = mysql_scratch.name()
    counts = mysql_restore(mysql_server, database=target, staged=out, scratch=tmp_path / "scratch")
    assert counts == MYSQL_SAMPLE_COUNTS
    assert row_counts_compare(meta["tables"], counts) == []
    assert mysql_content(target) == mysql_content(source)
    assert mysql_sql("SELECT COUNT(*) FROM audit", database=target) == [["50"]]  # triggers ran once


def test_restore_after_the_source_is_damaged_gives_back_the_original(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create()
    before = mysql_content(source)
    meta = mysql_dump(mysql_server, database=source, out=tmp_path / "o", scratch=tmp_path)

    mysql_sql(
        "DROP VIEW customer_totals; DROP TABLE orders; DELETE FROM customers WHERE id > 1;",
        database=source,
    )
    damaged = mysql_row_counts(mysql_server, database=source)
    assert row_counts_compare(meta["tables"], damaged) == [
        "customers: 5 rows expected, 1 found",
        "orders: 50 rows expected, table missing",
    ]

    target = mysql_scratch.name()
    counts = mysql_restore(mysql_server, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert counts == meta["tables"] == MYSQL_SAMPLE_COUNTS
    assert mysql_content(target) == before


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create()
    mysql_dump(mysql_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    occupied = mysql_scratch.create(sample=False)
    mysql_sql("CREATE TABLE keep_me (id INT); INSERT INTO keep_me VALUES (7);", database=occupied)

    with pytest.raises(SourceError, match="exists and is not empty"):
        mysql_restore(mysql_server, database=occupied, staged=tmp_path / "o", scratch=tmp_path)
    assert mysql_row_counts(mysql_server, database=occupied) == {"keep_me": 1}

    counts = mysql_restore(
        mysql_server, database=occupied, staged=tmp_path / "o", scratch=tmp_path, force=True
    )
    assert counts == MYSQL_SAMPLE_COUNTS  # keep_me is gone: the database was replaced

    empty = mysql_scratch.create(sample=False)  # an empty database is used as it is
    counts = mysql_restore(mysql_server, database=empty, staged=tmp_path / "o", scratch=tmp_path)
    assert counts == MYSQL_SAMPLE_COUNTS


def test_a_failed_restore_leaves_no_database_behind(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create(sample=False)
    mysql_sql("CREATE TABLE t (id INT); INSERT INTO t VALUES (1);", database=source)
    mysql_dump(mysql_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    with (tmp_path / "o" / "dump.sql").open("ab") as handle:
        handle.write(b"INSERT INTO `no_such_table` VALUES (1);\n")
    target = mysql_scratch.name()
    with pytest.raises(SourceError, match="no_such_table"):
        mysql_restore(mysql_server, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert target not in mysql_databases(mysql_server)


def test_drop_removes_the_database(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch
) -> None:
    name = mysql_scratch.create(sample=False)
    assert name in mysql_databases(mysql_server)
    mysql_drop(mysql_server, database=name)
    assert name not in mysql_databases(mysql_server)
    mysql_drop(mysql_server, database=name)  # dropping what is gone is fine
    assert mysql_server_version(mysql_server).startswith("10.11.")


def test_two_dumps_of_an_unchanged_database_are_byte_identical(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create()
    first = mysql_dump(mysql_server, database=source, out=tmp_path / "a", scratch=tmp_path)
    second = mysql_dump(mysql_server, database=source, out=tmp_path / "b", scratch=tmp_path)
    assert first == second
    for name in ("dump.sql", META_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_wrong_password_is_refused_without_showing_it(
    mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    source = mysql_scratch.create(sample=False)
    user = mysql_scratch.user(password="right-pw-0815", databases=[source])
    wrong = DatabaseServer(
        host=user.host, port=user.port, username=user.username, password="wrong-pw-4711"
    )
    with pytest.raises(SourceCredentialsRefused) as refused:
        mysql_dump(wrong, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert "Access denied" in str(refused.value)
    assert "wrong-pw-4711" not in str(refused.value)
    assert not (tmp_path / "o" / "dump.sql").exists()
    with pytest.raises(SourceCredentialsRefused):
        mysql_databases(wrong, scratch=tmp_path)
    # A database the user has no right to is refused the same way (the server does not say
    # whether it exists).
    with pytest.raises(SourceCredentialsRefused):
        mysql_row_counts(user, database=unique_name(), scratch=tmp_path)


def test_a_closed_port_is_unreachable_quickly(tmp_path: Path) -> None:
    server = DatabaseServer(host="127.0.0.1", port=free_port(), username="root")
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="Can't connect"):
        mysql_dump(server, database="anything", out=tmp_path / "o", scratch=tmp_path)
    with pytest.raises(SourceUnreachable):
        mysql_databases(server, scratch=tmp_path)
    assert time.monotonic() - started < 10


def test_a_missing_database(mysql_server: DatabaseServer, tmp_path: Path) -> None:
    missing = unique_name("ao_missing")
    with pytest.raises(SourceMissing, match="Unknown database"):
        mysql_dump(mysql_server, database=missing, out=tmp_path / "o", scratch=tmp_path)
    with pytest.raises(SourceMissing):
        mysql_row_counts(mysql_server, database=missing)
    assert not (tmp_path / "o" / "dump.sql").exists()


def test_hostile_names_never_reach_a_program(mysql_server: DatabaseServer, tmp_path: Path) -> None:
    for name in ["-x", "a;drop", "a b", "a/../b", "a`b", "a'b", "a\x00", "postgres://x", "x" * 64]:
        with pytest.raises(ValueError, match="database name"):
            mysql_dump(mysql_server, database=name, out=tmp_path / "o", scratch=tmp_path)
        with pytest.raises(ValueError, match="database name"):
            mysql_restore(mysql_server, database=name, staged=tmp_path, scratch=tmp_path)
        with pytest.raises(ValueError, match="database name"):
            mysql_drop(mysql_server, database=name)
    assert not (tmp_path / "o").exists()


def test_the_password_is_on_no_command_line_while_mariadb_dump_runs(
    mysql_scratch: MysqlScratch, tmp_path: Path
) -> None:
    """A user with an awkward password dumps a table big enough to watch, then restores it
    into a new database of its own: the password is in no process's argv or environment."""
    source = mysql_scratch.create(sample=False, big_rows=30_000)
    target = unique_name()
    mysql_scratch.databases.append(target)
    user = mysql_scratch.user(password=AWKWARD_PASSWORD, databases=[source, target])
    with ProcWatch(secret=AWKWARD_PASSWORD.split("\n")[0], program="mariadb-dump") as watch:
        meta = mysql_dump(user, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert meta["tables"] == {"big": 30_000}
    assert watch.seen > 0, "mariadb-dump was never observed: the check proves nothing"
    assert watch.leaks == []

    with ProcWatch(secret=AWKWARD_PASSWORD.split("\n")[0], program="mariadb") as watch:
        counts = mysql_restore(user, database=target, staged=tmp_path / "o", scratch=tmp_path)
    assert counts == {"big": 30_000}
    assert watch.seen > 0
    assert watch.leaks == []


def test_a_server_newer_than_the_client_is_refused_by_name(
    mysql_server: DatabaseServer, mysql_scratch: MysqlScratch, tmp_path: Path, monkeypatch
) -> None:
    source = mysql_scratch.create(sample=False)
    monkeypatch.setattr(mysql, "_server_version_of", lambda session, **kwargs: "11.8.2-MariaDB")
    with pytest.raises(SourceError) as error:
        mysql_dump(mysql_server, database=source, out=tmp_path / "o", scratch=tmp_path)
    assert re.search(
        r"mariadb-dump 10\.11\.\d+ on the worker is older than the MariaDB 11\.8\.2-MariaDB server",
        str(error.value),
    )
    assert not (tmp_path / "o" / "dump.sql").exists()

    # An older MariaDB, and MySQL (numbered its own way), are dumped.
    for version in ("10.6.18-MariaDB", "8.4.0"):
        monkeypatch.setattr(mysql, "_server_version_of", lambda session, v=version, **kw: v)
        meta = mysql_dump(mysql_server, database=source, out=tmp_path / version, scratch=tmp_path)
        assert meta["server_version"] == version


def test_dump_row_counts_skip_bodies_and_hold_no_whole_line(tmp_path: Path) -> None:
    """Counting reads line heads only: a row of several megabytes (longer than a read) counts
    once, and INSERT lines in routine bodies or outside a table's LOCK TABLES do not count."""
    big = b"x" * (3 * 1024 * 1024)
    dump = tmp_path / "dump.sql"
    dump.write_bytes(
        b"INSERT INTO `t` VALUES (0);\n"  # outside LOCK TABLES: not a row of the dump
        b"LOCK TABLES `t` WRITE;\n"
        b"INSERT INTO `t` VALUES (1,'" + big + b"');\n"
        b"INSERT INTO `t` (`a`, `b`) VALUES (2,'b');\n"
        b"INSERT INTO `other` VALUES (3);\n"
        b"UNLOCK TABLES;\n"
        b"LOCK TABLES `we``ird` WRITE;\n"
        b"UNLOCK TABLES;\n"
        b"DELIMITER ;;\n"
        b"LOCK TABLES `t` WRITE;\n"
        b"INSERT INTO `t` VALUES (4);\n"
        b"DELIMITER ;\n"
        b"LOCK TABLES `last` WRITE;\n"
        b"INSERT INTO `last` VALUES (5);"  # no final newline
    )
    assert mysql_dump_row_counts(dump=dump) == {"t": 2, "we`ird": 0, "last": 1}
