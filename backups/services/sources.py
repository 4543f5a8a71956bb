"""Sources read by another program: git repositories and PostgreSQL/MySQL databases.

A backup of such a dataset first turns the source into files in a private staging directory of
the worker's scratch. For git that is a bundle of every ref (from a bare mirror kept per dataset
in the scratch and fetched with --prune) plus its LFS objects. For a database it is an
uncompressed logical dump. Either way `agencyops-source.json` holds what the source said of
itself: refs and fsck, or server version, dump format and row count per table. The engine
backs the staging directory up like any folder; content-defined chunks and compression make a
second dump of an unchanged database cost almost nothing. A restore goes the other way: the
engine restores the snapshot into staging, then git or pg_restore/mariadb puts it where the
tenant asked.

The workers connect for a tenant, so the egress policy applies: the host is resolved and judged
here, once (`kernel.egress.address_pick`). The program gets the address, never the name, so a
name that answers differently later cannot move it. Credentials are unsealed here and reach the
program only through its environment or 0600 files (backups.sources.process).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from backups.models import CopyKind, DataCopy, Snapshot
from backups.services.exports import export_inbox, export_meta
from backups.services.stores import dataset_source
from backups.sources import git, mysql, postgres
from backups.sources.databases import DatabaseServer, row_counts_compare
from backups.sources.process import SourceError, SourceUnreachable
from backups.storage import LocalObjectStore, ObjectStore
from clients.models import DATABASE_KINDS, Dataset, LocationKind, StorageLocation
from clients.services import location_credentials
from kernel.egress import EgressRefused, address_pick
from kernel.local_roots import organization_folders
from kernel.sources import database_server_check, git_base_check, git_repository_url

META_FILE = "agencyops-source.json"


def scratch_root() -> Path:
    return Path(settings.AGENCYOPS_SCRATCH_DIR).absolute()


def mirror_directory(dataset: Dataset) -> Path:
    """The bare mirror a git dataset's backups fetch into: one per dataset, in the worker's
    scratch, named by its public id (never by anything the tenant typed)."""
    return scratch_root() / "mirrors" / str(dataset.public_id)


def is_source_backed(dataset: Dataset) -> bool:
    return dataset.location.kind in (LocationKind.GIT, *DATABASE_KINDS)


# --- reaching the source ---


def _pinned(host: str) -> str:
    try:
        return address_pick(host)
    except EgressRefused:
        raise SourceUnreachable(
            "The egress policy does not allow connecting to this host (an internal address); "
            "the operator may allow it with AGENCYOPS_EGRESS_ALLOW."
        ) from None
    except (socket.gaierror, UnicodeError):
        raise SourceUnreachable("The host name does not resolve.") from None


def git_remote(location: StorageLocation, path: str) -> git.GitRemote:
    """The repository `path` under a git location, as git will reach it: its URL, its sealed
    credentials, the one address it may connect to, the local roots a file:// URL must stay in."""
    url = git_repository_url(location.endpoint_url, path)
    scheme, host, _port = git_base_check(location.endpoint_url)
    roots = tuple(organization_folders(settings.AGENCYOPS_LOCAL_ROOTS, location.organization.slug))
    return git.GitRemote(
        url=url,
        credentials=location_credentials(location),
        pinned_address=None if scheme == "file" else _pinned(host),
        file_roots=roots,
    )


def database_server(location: StorageLocation) -> DatabaseServer:
    host, port = database_server_check(location.kind, location.endpoint_url)
    credentials = location_credentials(location) or {}
    if not credentials.get("username"):
        raise SourceError(
            f"{location.name} has no credentials: give it a user name (and password)."
        )
    return DatabaseServer(
        host=_pinned(host),
        port=port,
        username=credentials["username"],
        password=credentials.get("password", ""),
    )


# --- backing up ---


@dataclass
class Staged:
    """A source turned into files: the store and prefix the engine reads, and what the source
    said of itself."""

    store: ObjectStore
    prefix: str
    meta: dict[str, Any] = field(default_factory=dict)


def _write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _mirror_locked(mirror: Path) -> Iterator[None]:
    """One fetch and bundle at a time per mirror on this host: runs of one dataset to two
    targets may overlap, and git's own ref locks would fail the second one."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with (mirror.parent / f"{mirror.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stage_git(dataset: Dataset, directory: Path) -> dict[str, Any]:
    remote = git_remote(dataset.location, dataset.path)
    mirror = mirror_directory(dataset)
    with _mirror_locked(mirror):
        git.git_mirror_fetch(remote, mirror=mirror, scratch=directory.parent)
        meta = dict(git.git_stage(mirror, out=directory))
    meta.update({"source": "git", "repository": dataset.path})
    return meta


def _stage_database(dataset: Dataset, directory: Path) -> dict[str, Any]:
    server = database_server(dataset.location)
    postgres_kind = dataset.location.kind == LocationKind.POSTGRES
    dump = postgres.postgres_dump if postgres_kind else mysql.mysql_dump
    meta = dict(dump(server, database=dataset.path, out=directory, scratch=directory.parent))
    meta["source"] = dataset.location.kind
    return meta


@contextlib.contextmanager
def source_staged(dataset: Dataset, *, run_id: str) -> Iterator[Staged]:
    """The files a backup of this git or database dataset reads, in a private staging directory
    of the scratch that is removed when the block ends (whatever happens)."""
    parent = scratch_root() / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    directory = parent / f"{run_id}-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o700)
    try:
        if dataset.location.kind == LocationKind.GIT:
            meta = _stage_git(dataset, directory)
        else:
            meta = _stage_database(dataset, directory)
        _write_meta(directory, meta)
        yield Staged(store=LocalObjectStore(directory), prefix="", meta=meta)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def source_opened(dataset: Dataset, *, run_id: str) -> Iterator[Staged]:
    """What a backup of the dataset reads: its bucket prefix or directory as it is, or (git,
    databases) the files `source_staged` makes of it for the length of the block."""
    if dataset.location.kind == LocationKind.SAAS:
        # No connector: what was exported and uploaded (backups.services.exports).
        meta = export_meta(dataset)
        yield Staged(store=LocalObjectStore(export_inbox(dataset)), prefix="", meta=meta)
        return
    if not is_source_backed(dataset):
        store, prefix = dataset_source(dataset)
        yield Staged(store=store, prefix=prefix)
        return
    with source_staged(dataset, run_id=run_id) as staged:
        yield staged


def mirror_cache_record(dataset: Dataset, snapshot: Snapshot) -> None:
    """The mirror a git backup keeps in the worker's scratch is a copy of client data: tracked
    (one row per dataset, naming its newest snapshot) so a deletion removes it and its
    certificate names it."""
    copy = DataCopy.objects.filter(
        dataset=dataset, kind=CopyKind.MIRROR, removed_at__isnull=True
    ).first()
    if copy is None:
        DataCopy.objects.create(
            organization_id=dataset.organization_id,
            dataset=dataset,
            snapshot=snapshot,
            kind=CopyKind.MIRROR,
            path=f"{socket.gethostname()}:{mirror_directory(dataset)}",
            made_at=snapshot.taken_at,
        )
    else:
        DataCopy.objects.filter(pk=copy.pk).update(snapshot=snapshot)


# --- restoring ---


@dataclass(frozen=True)
class Applied:
    """What a restore of a source put where: a one-line description, and the facts checked."""

    description: str
    facts: dict[str, Any]


def staged_meta(directory: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        raise SourceError(
            f"The snapshot has no readable {META_FILE}: it is not a source backup."
        ) from None
    return data


def git_apply_to_store(staged: Path, work: Path, store: ObjectStore, prefix: str) -> Applied:
    """A bare repository from the staged bundle, written through the destination store (so a
    local location's containment rules hold for every file git made)."""
    bare = work / "repository.git"
    refs = git.git_restore_bare(staged, dest=bare)
    written = 0
    for path in sorted(bare.rglob("*")):
        if path.is_file() and not path.is_symlink():
            key = "/".join(filter(None, [prefix.strip("/"), *path.relative_to(bare).parts]))
            with path.open("rb") as handle:
                store.put(key, handle)
            written += 1
    for folder in ("refs", "objects"):
        # git knows a repository by its refs/ and objects/ folders; a store keeps files only.
        if not any(p.is_file() for p in (bare / folder).rglob("*")):
            store.put("/".join(filter(None, [prefix.strip("/"), folder, ".keep"])), b"")
    return Applied(f"bare repository ({len(refs)} refs, {written} files)", {"refs": refs})


def git_apply_to_directory(staged: Path, destination: Path) -> Applied:
    refs = git.git_restore_bare(staged, dest=destination)
    return Applied(f"bare repository ({len(refs)} refs)", {"refs": refs})


def git_apply_push(staged: Path, work: Path, location: StorageLocation, path: str) -> Applied:
    bare = work / "repository.git"
    refs = git.git_restore_bare(staged, dest=bare)
    git.git_push_mirror(bare, git_remote(location, path), scratch=work)
    return Applied(f"pushed {len(refs)} refs to {path}", {"refs": refs})


def database_apply(
    staged: Path, location: StorageLocation, database: str, *, force: bool
) -> Applied:
    """The dump restored into a new database, then every table's row count compared with the
    count recorded when it was dumped: a mismatch fails the restore."""
    meta = staged_meta(staged)
    server = database_server(location)
    restore = (
        postgres.postgres_restore if location.kind == LocationKind.POSTGRES else mysql.mysql_restore
    )
    counts = restore(server, database=database, staged=staged, force=force, scratch=staged.parent)
    problems = row_counts_compare(meta.get("tables", {}), counts)
    if problems:
        raise SourceError("Row counts differ from the snapshot's: " + "; ".join(problems[:5]))
    return Applied(
        f"database {database} ({len(counts)} tables, row counts match)", {"tables": counts}
    )


def database_drop(location: StorageLocation, database: str) -> None:
    server = database_server(location)
    if location.kind == LocationKind.POSTGRES:
        postgres.postgres_drop(server, database=database)
    else:
        mysql.mysql_drop(server, database=database)


def database_exists(location: StorageLocation, database: str) -> bool:
    server = database_server(location)
    names = (
        postgres.postgres_databases(server)
        if location.kind == LocationKind.POSTGRES
        else mysql.mysql_databases(server)
    )
    return database in names


def mirror_remove(dataset: Dataset) -> bool:
    """Remove the dataset's mirror cache from this worker's scratch; whether none is left."""
    mirror = mirror_directory(dataset)
    if mirror.parent != scratch_root() / "mirrors":  # never anything but our own folder
        return False
    with _mirror_locked(mirror):
        shutil.rmtree(mirror, ignore_errors=True)
    (mirror.parent / f"{mirror.name}.lock").unlink(missing_ok=True)
    return not os.path.lexists(mirror)


def mirror_cache_remove(dataset: Dataset, *, removal: str) -> None:
    """Remove the dataset's mirror cache where this worker can (its own host's scratch) and
    record it removed; one on another host stays recorded, so the verification names it."""
    host = socket.gethostname()
    for copy in DataCopy.objects.filter(
        dataset=dataset, kind=CopyKind.MIRROR, removed_at__isnull=True
    ):
        if copy.path.partition(":")[0] != host:
            continue
        if mirror_remove(dataset):
            DataCopy.objects.filter(pk=copy.pk).update(
                removed_at=timezone.now(), removal=f"{removal}: mirror cache removed from {host}"
            )


def mirror_caches_left(datasets: Sequence[Dataset]) -> list[str]:
    """The mirror caches of these datasets still recorded (host:path)."""
    return list(
        DataCopy.objects.filter(
            dataset__in=list(datasets), kind=CopyKind.MIRROR, removed_at__isnull=True
        ).values_list("path", flat=True)
    )
