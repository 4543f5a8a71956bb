"""SaaS exports: Notion, Slack, Google Workspace, Linear, GitHub issues and wikis, other tools.

AgencyOps has no API connector for these tools and does not pretend to. Their data is
protected only by exports someone makes. A lead uploads the export file (page or API), or puts
it in the dataset's drop folder. Each export becomes a snapshot like any other: backed up to the
policy's targets, restorable, deletable, in evidence. Until one arrives the dataset counts as
unprotected, and its scheduled backup fails with a message that says an export is due. That
failure raises the usual alert, so a missing export is as visible as a failed backup.

The upload is streamed into the dataset's inbox in the scratch, limited in size by
`AGENCYOPS_EXPORT_MAX_BYTES` while it streams, never after. The next backup run reads the inbox
and then clears what it stored.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from backups.models import ACTIVE_RUN_STATES, BackupRun, Trigger
from backups.sources.process import SourceError
from clients.models import Dataset, LifecycleState, LocationKind
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import Actor

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MANUAL_NOTE = (
    "exports of this tool are manual: AgencyOps has no connector for it; someone exports the "
    "data and uploads the file (dataset page or POST /api/v1/datasets/<id>/exports/)"
)


def export_inbox(dataset: Dataset) -> Path:
    """Where the dataset's exports wait for the next backup: named by its public id."""
    return Path(settings.AGENCYOPS_SCRATCH_DIR).absolute() / "exports" / str(dataset.public_id)


def export_file_name(name: str) -> str:
    """The uploaded file's name reduced to plain characters, never a path."""
    leaf = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _SAFE.sub("_", leaf).strip("._") or "export"
    return cleaned[:120]


def export_limit() -> int:
    return int(settings.AGENCYOPS_EXPORT_MAX_BYTES)


def export_too_large(size: int) -> ValidationFailed:
    limit = export_limit()
    return ValidationFailed(
        f"The export is larger than the limit of {limit:,} bytes (AGENCYOPS_EXPORT_MAX_BYTES).",
        fields={"file": f"At most {limit:,} bytes."},
    )


def saas_export_allowed(*, actor: Actor, dataset: Dataset) -> None:
    """The right to upload an export (`manage` on the dataset), checked before the upload is
    read: a caller without it is refused (403) whatever it sends."""
    actor.require_level(
        "manage", client_id=dataset.client_id, dataset_id=dataset.pk, action="upload exports"
    )
    if dataset.lifecycle_state in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING):
        raise Conflict(
            f"The dataset is {dataset.get_lifecycle_state_display().lower()}: no export is taken."
        )


def saas_export_receive(*, actor: Actor, dataset: Dataset, upload: UploadedFile) -> BackupRun:
    """Take an uploaded export of a SaaS dataset into its inbox (streamed, size-limited) and
    start a backup of it to the policy's targets. Needs `manage` on the dataset."""
    from backups.services.runs import backup_run_request

    saas_export_allowed(actor=actor, dataset=dataset)
    if dataset.location.kind != LocationKind.SAAS:
        raise ValidationFailed(
            "Exports are uploaded for datasets of a SaaS tool; this dataset is read directly.",
            fields={"file": "This dataset's location is not a SaaS tool."},
        )
    if upload.size is not None and upload.size > export_limit():
        raise export_too_large(upload.size)
    inbox = export_inbox(dataset)
    # Written beside the inbox, then moved in whole: a backup never reads half an export.
    incoming = inbox.with_name(f"{inbox.name}.incoming")
    inbox.mkdir(parents=True, exist_ok=True)
    incoming.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    target = inbox / f"{stamp}-{uuid.uuid4().hex[:6]}-{export_file_name(upload.name or '')}"
    partial = incoming / target.name
    written = 0
    try:
        with partial.open("wb") as handle:
            for chunk in upload.chunks():
                written += len(chunk)
                if written > export_limit():
                    raise export_too_large(written)
                handle.write(chunk)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    try:
        return backup_run_request(actor=actor, dataset=dataset, trigger=Trigger.EXPORT)
    except Conflict:
        # A backup of the dataset is already pending or running: the export waits in the
        # inbox for it (if it has not listed the inbox yet) or for the next one, never lost.
        active = (
            BackupRun.objects.filter(dataset=dataset, status__in=ACTIVE_RUN_STATES)
            .order_by("-created_at")
            .first()
        )
        if active is None:
            raise
        return active


def inbox_files(dataset: Dataset) -> list[Path]:
    inbox = export_inbox(dataset)
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_file())


def export_meta(dataset: Dataset) -> dict[str, Any]:
    """What the next backup of a SaaS dataset stores: the exports in its inbox; SourceError
    (which fails the run and alerts) when none has arrived."""
    files = inbox_files(dataset)
    if not files:
        raise SourceError(
            f"No export of {dataset.name} has arrived since the last snapshot; {MANUAL_NOTE}."
        )
    exports = []
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1024 * 1024):
                digest.update(block)
        exports.append(
            {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        )
    return {
        "source": "saas",
        "tool": dataset.location.provider,
        "connector": "none (manual export)",
        "exports": exports,
    }


def inbox_clear(dataset: Dataset, names: Iterable[str]) -> None:
    """Remove the exports a recorded snapshot holds (later arrivals stay for the next run)."""
    inbox = export_inbox(dataset)
    for name in names:
        (inbox / name).unlink(missing_ok=True)
    if inbox.is_dir() and not any(inbox.iterdir()):
        shutil.rmtree(inbox, ignore_errors=True)


def export_inbox_remove(dataset: Dataset) -> list[str]:
    """A deletion removes the exports still waiting for a backup (and half-written ones):
    they are client data the product holds. The names it removed."""
    inbox = export_inbox(dataset)
    removed = [p.name for p in inbox_files(dataset)]
    for folder in (inbox, inbox.with_name(f"{inbox.name}.incoming")):
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def export_inbox_left(dataset: Dataset) -> bool:
    inbox = export_inbox(dataset)
    return inbox.exists() or inbox.with_name(f"{inbox.name}.incoming").exists()
