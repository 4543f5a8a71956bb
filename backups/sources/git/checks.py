"""What a tenant gives for a repository, checked before git sees it: the URL's scheme, host,
user and path, with plain characters only (no option, no second URL, no `..`)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

_BASE_SCHEMES = frozenset({"https", "ssh", "git", "file"})
# A GitRemote also takes http: whether plain HTTP may be used is the caller's egress policy.
_REMOTE_SCHEMES = _BASE_SCHEMES | {"http"}
# Plain characters only: what hosting services allow in namespaces and repository names.
_PATH_CHARS = re.compile(r"[A-Za-z0-9._/+=,-]*")
_SHELL_CHARS = frozenset(";|&$`<>(){}[]*?!~'\"\\#%^")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


# --- checking what the tenant gave --------------------------------------------------------


def _check_repository_path(path: str) -> None:
    if not path:
        raise ValueError("the repository path is empty")
    if path.startswith("-"):
        raise ValueError(f"repository path {path!r} starts with '-' (it would be an option)")
    if path.startswith("/"):
        raise ValueError(f"repository path {path!r} starts with '/' (it must be relative)")
    if "://" in path or "::" in path:
        raise ValueError(f"repository path {path!r} contains a second URL or transport (://, ::)")
    if "@" in path:
        raise ValueError(f"repository path {path!r} contains '@' (a user or host)")
    _check_path_chars(path, what=f"repository path {path!r}")


def _check_path_chars(path: str, *, what: str) -> None:
    if "\x00" in path:
        raise ValueError(f"{what} contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise ValueError(f"{what} contains a control character")
    if any(char.isspace() for char in path):
        raise ValueError(f"{what} contains whitespace")
    if ".." in path:
        raise ValueError(f"{what} contains '..'")
    shell = sorted(set(path) & _SHELL_CHARS)
    if shell:
        raise ValueError(f"{what} contains shell metacharacters: {''.join(shell)}")
    if not _PATH_CHARS.fullmatch(path):
        raise ValueError(f"{what} contains characters other than letters, digits and ._/+=,-")


def _check_url(url: str, *, schemes: frozenset[str]) -> SplitResult:
    if "::" in url:
        # ext::, fd:: and every other remote helper; also keeps IPv6 literals out (a host is
        # given by name, and its address as `pinned_address`).
        raise ValueError(f"URL {url!r} names a git transport helper (::)")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise ValueError(f"URL {url!r} contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not url.startswith(f"{parts.scheme}://"):
        allowed = ", ".join(sorted(schemes))
        raise ValueError(f"URL {url!r} must start with one of {allowed} and ://")
    if "?" in url or "#" in url:
        raise ValueError(f"URL {url!r} has a query or fragment")
    if parts.password is not None:
        raise ValueError(f"URL {parts.scheme}://{parts.hostname}/… carries a password")
    if parts.username is not None and not _USER.fullmatch(parts.username):
        raise ValueError(f"URL {url!r} has an unusable user name")
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(f"URL {url!r} must be file:///absolute/path (no host)")
    else:
        host = parts.hostname or ""
        if not (_HOST.fullmatch(host) or _is_ip(host)):
            raise ValueError(f"URL {url!r} has no usable host name")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise ValueError(f"URL {url!r} has a port that is not a number") from None
    if parts.path not in ("", "/"):
        _check_path_chars(parts.path, what=f"URL {url!r}")
    return parts


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
