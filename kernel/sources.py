"""The names a tenant gives for a source other programs will read: a git host or repository, a
database server or database. Checked when they are saved, before any program sees them.

Each name ends up as an argument of `git`, `pg_dump` or `mariadb-dump`. Those programs take a
leading `-` as an option (`-oProxyCommand=…`, `--upload-pack=…`), read `ext::` as "run this
command", follow `file://` anywhere on the host, and some read `;`, `$( )` or a second URL
in ways the caller did not mean. The rule is an allow list, not a deny list. A repository path
is plain '/'-separated parts of letters, digits and `._-`, no part starting with `-` or `.`. A
database name is an identifier. A base URL has one of the allowed schemes and a host, with no
password, query or fragment.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

GIT_SCHEMES = ("https", "ssh", "git", "file")
DATABASE_SCHEMES = {"postgres": ("postgresql", "postgres"), "mysql": ("mysql", "mariadb")}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_DATABASE_NAME = 63
MAX_REPOSITORY_PATH = 500


class SourceNameInvalid(ValueError):
    """A name refused: the message says what is wrong and what is allowed."""


def _plain(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise SourceNameInvalid(f"Give the {what}.")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise SourceNameInvalid(f"The {what} may not contain spaces or control characters.")


def repository_path_check(path: str) -> str:
    """A repository under a git location's base: `team/app.git`. Letters, digits and `._-` in
    '/'-separated parts; no part is empty, `.`/`..`, or starts with `-` or `.`; no second URL
    (`://`, `::`), no user (`@`), no shell metacharacter."""
    _plain(path, "repository path")
    if len(path) > MAX_REPOSITORY_PATH:
        raise SourceNameInvalid(f"The repository path is longer than {MAX_REPOSITORY_PATH}.")
    if "://" in path or "::" in path:
        raise SourceNameInvalid("The repository path may not contain a second URL.")
    cleaned = path.strip("/")
    if path.startswith("/") or not cleaned:
        raise SourceNameInvalid("The repository path is relative to the location's URL.")
    for part in cleaned.split("/"):
        if part in ("", ".", ".."):
            raise SourceNameInvalid("The repository path may not contain '..', '.' or '//'.")
        if not _PART.fullmatch(part):
            raise SourceNameInvalid(
                "A repository path is made of letters, digits, '.', '_' and '-' (no part "
                "starting with '-' or '.')."
            )
    return cleaned


def database_name_check(name: str) -> str:
    """A database name: an identifier (a letter or `_`, then letters, digits, `_`), at most 63
    characters (PostgreSQL's limit, within MySQL's)."""
    _plain(name, "database name")
    if len(name) > MAX_DATABASE_NAME:
        raise SourceNameInvalid(f"A database name has at most {MAX_DATABASE_NAME} characters.")
    if not _DATABASE.fullmatch(name):
        raise SourceNameInvalid(
            "A database name starts with a letter or '_' and holds only letters, digits and '_'."
        )
    return name


def _base_parts(url: str, schemes: tuple[str, ...], what: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a base URL, checked: allowed scheme, a host (or none for
    file), no password, query or fragment."""
    _plain(url, what)
    if url.lower().startswith("ext::") or "::" in url.split("://", 1)[0]:
        raise SourceNameInvalid("Remote helpers (ext::, fd::) are not allowed.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SourceNameInvalid(f"The {what} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        starts = ", ".join(s + "://" for s in schemes)
        raise SourceNameInvalid(f"The {what} must start with {starts}.")
    if parts.password is not None:
        raise SourceNameInvalid(
            "The URL may not contain a password; give credentials separately (they are sealed)."
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise SourceNameInvalid("The URL may not have a query or fragment.")
    host = parts.hostname or ""
    if scheme == "file":
        if host or parts.netloc:
            raise SourceNameInvalid("A file:// URL names a local directory: file:///path/.")
    elif not host or port == 0:
        raise SourceNameInvalid(f"The {what} has no host.")
    elif host.startswith("-"):
        raise SourceNameInvalid("A host name may not start with '-'.")
    return scheme, host, port


def git_base_check(url: str) -> tuple[str, str, int | None]:
    """A git location's base: https://host/org/, ssh://git@host/org/, git://host/ or
    file:///dir/ (the last only inside the operator's local roots, checked by the caller).
    Returns (scheme, host, port)."""
    scheme, host, port = _base_parts(url, GIT_SCHEMES, "git URL")
    parts = urlsplit(url)
    if parts.username is not None and (scheme != "ssh" or not _PART.fullmatch(parts.username)):
        raise SourceNameInvalid(
            "Only an ssh:// URL names a user (ssh://git@host/); give tokens as credentials."
        )
    path = parts.path.strip("/")
    if path:
        repository_path_check(path)
    return scheme, host, port


def database_server_check(kind: str, url: str) -> tuple[str, int]:
    """A database location's server: postgresql://host:port or mysql://host:port, nothing
    else (no user, database or options: those are the credentials and each dataset's path).
    Returns (host, port)."""
    schemes = DATABASE_SCHEMES[kind]
    _scheme, host, port = _base_parts(url, schemes, "server URL")
    parts = urlsplit(url)
    if parts.username is not None:
        raise SourceNameInvalid("Give the user name as credentials, not in the URL.")
    if parts.path.strip("/"):
        raise SourceNameInvalid(
            "The server URL names no database; each dataset's path is its database."
        )
    return host, port or DEFAULT_PORTS[kind]


def git_repository_url(base: str, path: str) -> str:
    """The URL of a repository under a git location's base."""
    git_base_check(base)
    return base.rstrip("/") + "/" + repository_path_check(path)
