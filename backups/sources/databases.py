"""What the database sources (postgres.py, mysql.py) share: the server to reach, the check a
database name passes before it goes anywhere near a command line or a statement, the meta file
written beside a dump, and the comparison of row counts after a restore.

A dump is plain text, uncompressed and stable between runs of an unchanged database: the
engine chunks, compresses, encrypts and deduplicates it, and a compressed or timestamped dump
would defeat the deduplication.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from backups.sources.process import (
    SourceCredentialsRefused,
    SourceError,
    SourceMissing,
    SourceUnreachable,
)
from kernel.sources import database_name_check as kernel_database_name_check

# Beside the dump, in the directory the engine backs up: what was dumped and the exact row
# counts a restore is checked against.
META_FILE = "agencyops-database.json"

# Seconds to wait for a server to answer a connection. A closed port is refused at once; this
# bounds a host that drops packets.
CONNECT_TIMEOUT = 10

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DatabaseServer:
    """A database server to connect to over TCP. `host` is the address the caller resolved and
    judged by its egress policy; it is used as given (no further name resolution where the
    client allows it)."""

    host: str
    port: int
    username: str
    password: str = ""

    def __post_init__(self) -> None:
        # A socket path would reach the worker's own server, past the egress policy.
        if not self.host or self.host.startswith(("/", "@", "-")) or _unsafe(self.host):
            raise ValueError("host must be a network address")
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        # The user name goes into option files and environment variables: one line, always.
        if not self.username or _CONTROL.search(self.username):
            raise ValueError("username must be one line of printable characters")
        if "\x00" in self.password:
            raise ValueError("password cannot contain a NUL character")

    def __repr__(self) -> str:
        password = "<set>" if self.password else "<empty>"
        return (
            f"DatabaseServer(host={self.host!r}, port={self.port}, "
            f"username={self.username!r}, password={password})"
        )


def _unsafe(text: str) -> bool:
    return bool(_CONTROL.search(text)) or any(char.isspace() for char in text)


def database_name_check(name: str) -> str:
    """The name, if it is safe to pass to pg_dump, mariadb-dump and into a quoted identifier;
    ValueError otherwise. The rule registration applies (`kernel.sources`), checked again here
    before every command: a name like `-x` or `host=evil` would be read by the tools as an
    option or a connection string."""
    return kernel_database_name_check(name)


def row_counts_compare(expected: Mapping[str, int], actual: Mapping[str, int]) -> list[str]:
    """One message per table whose rows differ (or that is missing on either side); an empty
    list when the restore holds exactly what was dumped."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            problems.append(f"{table}: {expected[table]} rows expected, table missing")
        elif table not in expected:
            problems.append(f"{table}: not in the backup, {actual[table]} rows found")
        elif expected[table] != actual[table]:
            problems.append(f"{table}: {expected[table]} rows expected, {actual[table]} found")
    return problems


def meta_write(out: Path, meta: Mapping[str, object]) -> None:
    # Sorted and indented: the same database gives the same bytes, run after run.
    text = json.dumps(meta, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (out / META_FILE).write_text(text, encoding="utf-8")


def meta_read(staged: Path) -> dict[str, object]:
    """The meta written beside a dump, or {} when there is none (a dump made elsewhere)."""
    path = staged / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise SourceError(f"{META_FILE} is not readable: {error}") from None
    if not isinstance(meta, dict):
        raise SourceError(f"{META_FILE} is not an object")
    return meta


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def error_classified(
    message: str,
    *,
    refused: re.Pattern[str],
    missing: re.Pattern[str],
    unreachable: re.Pattern[str],
) -> SourceError:
    """The SourceError subclass a client's (already scrubbed) message stands for, so the caller
    can tell the tenant to fix a password, a name or a firewall rather than retry."""
    if refused.search(message):
        return SourceCredentialsRefused(message)
    if missing.search(message):
        return SourceMissing(message)
    if unreachable.search(message):
        return SourceUnreachable(message)
    return SourceError(message)
