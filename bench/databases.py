"""A PostgreSQL database as a backup source (issue 15): its dump through the engine, beside
`pg_dump | zstd` alone.

A database of at least 200 MB of dump text is made on the machine's PostgreSQL (a throwaway
database, dropped at the end). Ours dumps it as the product does: directory format,
uncompressed, row counts in the dump's own snapshot. Then it backs the dump up with format 2
into a local repository in a child process, four times: the first dump, a dump of the unchanged
database, a dump after the newest 1% of the rows changed, and one after 1% scattered over the
table changed. Each reports time (dump + backup) and the
bytes the repository grew by. The baseline is what a nightly `pg_dump | zstd` job stores: the
whole compressed dump every night.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backups.sources.databases import DatabaseServer
from backups.sources.postgres import postgres_dump

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ROWS = int(os.environ.get("BENCH_PG_ROWS", "1300000"))
TIMEOUT = 900.0


def _connect(database: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=database, autocommit=True)


def _fill(database: str) -> None:
    with _connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with _connect(database) as connection:
        connection.execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, client text, kind text,"
            " amount numeric(12, 2), created timestamptz, payload text)"
        )
        connection.execute(
            "INSERT INTO events SELECT g, 'client-' || (g %% 300),"
            " (ARRAY['view', 'click', 'signup', 'purchase'])[1 + g %% 4], (g %% 10000) / 3.0,"
            " timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',"
            " md5(g::text) || md5((g * 7)::text) || repeat(chr(97 + (g %% 26)), 40)"
            " FROM generate_series(1, %s) g",
            [ROWS],
        )
        connection.execute(
            "CREATE TABLE clients AS SELECT g AS id, 'Client ' || g AS name FROM"
            " generate_series(1, 300) g"
        )


def _drop(database: str) -> None:
    with _connect() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _baseline(database: str, out: Path) -> dict[str, Any]:
    """`pg_dump --format=plain | zstd -3` into one file: the time and the bytes stored."""
    started = time.perf_counter()
    env = {**os.environ, "PGHOST": HOST, "PGPORT": str(PORT), "PGUSER": USER}
    pg_dump, zstd = shutil.which("pg_dump"), shutil.which("zstd")
    if pg_dump is None or zstd is None:
        raise RuntimeError("pg_dump and zstd are needed for the baseline")
    with out.open("wb") as target:
        dump = subprocess.Popen(
            [pg_dump, "--format=plain", f"--dbname={database}"], stdout=subprocess.PIPE, env=env
        )
        if dump.stdout is None:
            raise RuntimeError("pg_dump gave no output pipe")
        packed = subprocess.run(
            [zstd, "-3", "-q", "-c"],
            stdin=dump.stdout,
            stdout=target,
            check=True,
            timeout=TIMEOUT,
        )
        dump.stdout.close()
        if dump.wait(timeout=TIMEOUT) != 0 or packed.returncode != 0:
            raise RuntimeError("pg_dump | zstd failed")
    return {"seconds": time.perf_counter() - started, "bytes": out.stat().st_size}


def _ours(database: str, scratch: Path, repo: Path, label: str) -> dict[str, Any]:
    """One dump as the product makes it, then one format-2 backup of it (child process)."""
    staged = scratch / f"staged-{label}"
    staged.mkdir()
    server = DatabaseServer(host=HOST, port=PORT, username=USER)
    before = _tree_bytes(repo) if repo.exists() else 0
    started = time.perf_counter()
    meta = postgres_dump(server, database=database, out=staged, scratch=scratch)
    dumped = time.perf_counter() - started
    child = subprocess.run(
        [sys.executable, "-m", "bench.format2_child", str(staged), str(repo)],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    if child.returncode != 0:
        raise RuntimeError(f"format-2 backup of the dump failed: {child.stderr[-500:]}")
    report = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "dump_bytes": int(meta["bytes"]),  # type: ignore[call-overload]  # JSON meta
        "dump_seconds": dumped,
        "backup_seconds": report["seconds"],
        "seconds": dumped + report["seconds"],
        "added_bytes": _tree_bytes(repo) - before,
        "maxrss_mb": report["maxrss_mb"],
    }
    shutil.rmtree(staged)
    return result


def section_databases(scratch: Path) -> dict[str, Any]:
    database = f"agencyops_bench_{os.getpid()}"
    _drop(database)
    try:
        started = time.perf_counter()
        _fill(database)
        made = time.perf_counter() - started
        print(f"  database of {ROWS:,} rows made in {made:.1f} s", file=sys.stderr)
        baseline = _baseline(database, scratch / "dump.sql.zst")
        repo = scratch / "repo"
        first = _ours(database, scratch, repo, "first")
        unchanged = _ours(database, scratch, repo, "unchanged")
        # 1% of the rows changed, two ways. The newest 1% (a ledger's recent rows edited):
        # the dump's tail changes. 1% scattered over the table: an UPDATE moves each changed
        # row to the table's end, so every 1 MiB chunk of the dump holds some change.
        with _connect(database) as connection:
            connection.execute(
                "UPDATE events SET payload = md5(random()::text) || payload WHERE id > %s",
                [ROWS - ROWS // 100],
            )
        recent = _ours(database, scratch, repo, "recent")
        with _connect(database) as connection:
            connection.execute(
                "UPDATE events SET payload = md5(random()::text) || payload WHERE id % 100 = 7"
            )
        scattered = _ours(database, scratch, repo, "scattered")
    finally:
        _drop(database)
    stored = _tree_bytes(repo)
    return {
        "rows": ROWS,
        "dump_text_bytes": first["dump_bytes"],
        "pg_dump_zstd": baseline,
        "first": first,
        "no_change": unchanged,
        "one_percent_recent": recent,
        "one_percent_scattered": scattered,
        "repository_bytes_after_four": stored,
        "pg_dump_zstd_bytes_for_four": baseline["bytes"] * 4,
        "goals": {
            # MB as the tables print it (10^6 bytes), as the issue counts it.
            "database dump at least 200 MB": first["dump_bytes"] >= 200 * 1000 * 1000,
            "no-change database rerun adds under 1% of the first backup": unchanged["added_bytes"]
            < 0.01 * first["added_bytes"],
            "four nightly dumps store less than four pg_dump | zstd files": stored
            < 4 * baseline["bytes"],
        },
    }
