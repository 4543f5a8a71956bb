"""Local storage is the operator's to grant: the directories tenants may use, and the rule.

The operator lists the directories that may hold client data (`AGENCYOPS_LOCAL_ROOTS`); each
organization gets the folder named by its slug inside each root. A local storage location's
directory must resolve (symlinks followed, as the kernel would) inside one of those folders, so no
tenant input can name the host's own files, the installation's state (database, master key,
broker) or another organization's folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path


class OutsideLocalRoots(ValueError):
    """A directory lies outside every folder the operator granted to the organization."""


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def local_roots_parse(values: Iterable[str], *, protected: Iterable[Path]) -> tuple[Path, ...]:
    """The operator's roots, resolved. Refuses (ValueError, with the reason) a relative root, a
    root that contains or equals one of the `protected` paths (the var directory, the master key
    file, the database file, the broker folder, the installation), and roots nested in each
    other (an organization's folder in the outer root could then hold another root)."""
    roots: list[Path] = []
    for value in values:
        if not os.path.isabs(value):
            raise ValueError(
                f"AGENCYOPS_LOCAL_ROOTS entries must be absolute paths, not {value!r}."
            )
        roots.append(_real(value))
    guarded = [_real(p) for p in protected]
    for root in roots:
        for path in guarded:
            if path == root or path.is_relative_to(root):
                raise ValueError(
                    f"AGENCYOPS_LOCAL_ROOTS entry {root} contains {path}, which holds AgencyOps' "
                    "own state; tenants could read it. Give a directory that holds only client "
                    "storage."
                )
    for root in roots:
        for other in roots:
            if other != root and other.is_relative_to(root):
                raise ValueError(
                    f"AGENCYOPS_LOCAL_ROOTS entries {root} and {other} are nested; give "
                    "directories apart from each other."
                )
    return tuple(dict.fromkeys(roots))


def organization_folders(roots: Sequence[Path], slug: str) -> list[Path]:
    """Where an organization's local locations may live: `<root>/<slug>` in every root."""
    if not slug or "/" in slug or slug in (".", ".."):
        return []
    return [Path(root) / slug for root in roots]


def local_directory_resolve(path: str, *, roots: Sequence[Path], slug: str) -> Path:
    """The real directory a local location names, if it lies inside one of the organization's
    folders (`<root>/<slug>/…`, the folder itself included); else OutsideLocalRoots."""
    if not path or "\x00" in path or not os.path.isabs(path):
        raise OutsideLocalRoots("A local directory needs an absolute path.")
    real = _real(path)
    for folder in organization_folders([_real(r) for r in roots], slug):
        if real == folder or real.is_relative_to(folder):
            return real
    allowed = ", ".join(str(f) for f in organization_folders(roots, slug)) or "none"
    raise OutsideLocalRoots(
        f"A local directory must lie inside this organization's folder of a local root "
        f"({allowed}); the operator sets the roots (AGENCYOPS_LOCAL_ROOTS)."
    )
