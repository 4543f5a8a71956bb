"""What a drill of a git or database dataset checks beyond the restored files.

The files are the bundle or the dump, verified against the manifest like any drill. This module
then proves they are usable. A git drill makes a bare repository of the bundle in the scratch,
runs `git fsck` and compares every ref with the snapshot's record. A database drill restores the
dump into a scratch database on the dataset's own server, compares every table's row count with
the snapshot's record, then drops the database and checks that it is gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from backups.models import DrillScenario, RestoreRun, Snapshot
from backups.services import sources
from backups.sources import git
from backups.sources.databases import row_counts_compare
from backups.sources.process import SourceError
from clients.models import DATABASE_KINDS, LocationKind

logger = logging.getLogger(__name__)


@dataclass
class SourceChecked:
    issues: list[str] = field(default_factory=list)
    removal: str = ""


def drill_database_name(drill: RestoreRun) -> str:
    """The scratch database: named by the drill's id, never by anything a tenant typed."""
    return f"agencyops_drill_{drill.public_id.hex[:16]}"


def _refs_compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    problems = [f"ref {name} missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"ref {name} not in the snapshot" for name in sorted(set(actual) - set(expected))]
    problems += [
        f"ref {name} points to {actual[name][:12]}, the snapshot recorded {sha[:12]}"
        for name, sha in sorted(expected.items())
        if name in actual and actual[name] != sha
    ]
    return problems


def _git_check(snapshot: Snapshot, scratch: Path) -> SourceChecked:
    bare = scratch / "_drill-repository.git"
    refs = git.git_restore_bare(scratch, dest=bare)
    ok, report = git.git_fsck(bare)
    issues = [] if ok else [f"git fsck failed: {report[:500]}"]
    issues += _refs_compare(dict(snapshot.source_meta.get("refs", {})), refs)
    return SourceChecked(issues=issues)


def _database_check(drill: RestoreRun, snapshot: Snapshot, scratch: Path) -> SourceChecked:
    location = drill.dataset.location
    name = drill_database_name(drill)
    checked = SourceChecked()
    try:
        # Compares every table's row count with the dump's own record (a mismatch raises),
        # then with the snapshot's record in the database.
        applied = sources.database_apply(scratch, location, name, force=False)
        expected = dict(snapshot.source_meta.get("tables", {}))
        checked.issues += row_counts_compare(expected, applied.facts["tables"])
    except SourceError as exc:
        checked.issues.append(f"The dump could not be restored as recorded: {exc}")
    finally:
        try:
            sources.database_drop(location, name)
            gone = not sources.database_exists(location, name)
        except SourceError as exc:
            gone = False
            checked.issues.append(f"The scratch database {name} could not be dropped: {exc}")
        checked.removal = (
            f"scratch database {name} dropped (checked in the server's list)"
            if gone
            else f"scratch database {name} NOT dropped"
        )
    return checked


def drill_source_prepare(drill: RestoreRun) -> None:
    """The guide's "restore a code repository after simulating a deletion": the worker's mirror
    of the repository is deleted first, so what comes back comes from the backup alone."""
    if drill.scenario == DrillScenario.REPOSITORY_AFTER_DELETION:
        sources.mirror_remove(drill.dataset)


def drill_source_check(drill: RestoreRun, scratch: Path) -> SourceChecked | None:
    """The repository or database check of a drill whose files restored well; None for a
    dataset of files. A failure to check is an issue of the drill, never an exception."""
    kind = drill.dataset.location.kind
    if kind != LocationKind.GIT and kind not in DATABASE_KINDS:
        return None
    snapshot = Snapshot.objects.get(pk=drill.snapshot_id)
    try:
        if kind == LocationKind.GIT:
            return _git_check(snapshot, scratch)
        return _database_check(drill, snapshot, scratch)
    except SourceError as exc:
        return SourceChecked(issues=[f"The restored repository could not be used: {exc}"])
