"""Backing up: dump the database once and store it on every chosen location, each written
independently, with an alert per failing location and its resolution on the next success."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone

from agencyops.crypto import SealError, master_key
from backups import engine
from backups.models import AlertKind
from backups.services.alerts import alert_clear, alert_raise
from backups.services.selfbackup.common import (
    KEY_CONTEXT,
    SelfBackupError,
    SelfBackupResult,
    SelfBackupTarget,
    self_backup_data_key,
    self_backup_locations,
    self_repository_base,
)
from backups.services.selfbackup.database import _dump, _scratch
from backups.services.stores import store_for_location
from backups.storage import EndpointUnreachable, LocalObjectStore, ObjectStore, StorageError
from clients.models import StorageLocation

logger = logging.getLogger(__name__)

RETENTION = engine.RetentionPolicy(keep_last=3, keep_daily=14, keep_weekly=8)
# A target that may answer again soon: the task retries just those locations.
_TRANSIENT = (EndpointUnreachable,)
_FAILURES = (StorageError, engine.EngineError, SealError, OSError)


def _store_one(
    location: StorageLocation, source: ObjectStore, data_key: bytes, created: datetime
) -> SelfBackupTarget:
    try:
        store = store_for_location(location, create=True)
        base = self_repository_base(location)
        engine.init_repository(store, base, master_key(), data_key, context=KEY_CONTEXT)
        result = engine.backup(source, "", [(store, base)], data_key, now=created, threads=4)
    except _FAILURES as exc:
        return SelfBackupTarget(
            location.public_id,
            location.name,
            location.display_uri,
            None,
            error=str(exc) or type(exc).__name__,
            transient=isinstance(exc, _TRANSIENT),
        )
    try:
        engine.forget(store, base, RETENTION)
        engine.garbage_collect(store, base, data_key)
    except _FAILURES as exc:
        # The new snapshot is stored; pruning older ones can wait for the next run.
        logger.warning("self-backup retention on %s failed: %s", location.public_id, exc)
    return SelfBackupTarget(
        location.public_id, location.name, location.display_uri, result.manifest_id
    )


def _alert(location: StorageLocation, target: SelfBackupTarget, now: datetime) -> None:
    key = f"self_backup_failed:{location.public_id}"
    if target.ok:
        alert_clear(
            organization=location.organization,
            incident_key=key,
            resolution=f"AgencyOps' own backup reached {location.name} again.",
            now=now,
        )
        return
    alert_raise(
        organization=location.organization,
        kind=AlertKind.BACKUP_FAILED,
        incident_key=key,
        title=f"AgencyOps self-backup failed: {location.name}",
        message=(
            f"The backup of AgencyOps' own database to {location.name} failed: {target.error}. "
            "restore_self rebuilds the system from these backups; fix the target soon."
        ),
        location=location,
        now=now,
    )


def self_backup_run(
    *, locations: Sequence[StorageLocation] | None = None, now: datetime | None = None
) -> SelfBackupResult:
    """Dump the database once and store it on every chosen location (see the package docstring).

    Rules: the dump and manifest.json's counts come from one snapshot of the database; the
    plaintext dump exists only in a 0700 scratch directory during the run; each location is
    written independently and its outcome recorded (log line, alert on failure, resolution on
    success), a failed dump as every location's failure; no location at all is an error
    (nothing would protect the system).
    """
    now = now or timezone.now()
    chosen = list(locations) if locations is not None else self_backup_locations()
    if not chosen:
        raise SelfBackupError(
            "No location to back AgencyOps up to: set AGENCYOPS_SELF_BACKUP_LOCATIONS, or give "
            "an organization's records policy a target."
        )
    data_key = self_backup_data_key(master_key())
    manifest: dict[str, Any] = {"database": {"vendor": connection.vendor}, "counts": {}}
    with _scratch() as directory:
        try:
            manifest = _dump(directory, now)
        except (SelfBackupError, DatabaseError, sqlite3.Error, OSError) as exc:
            # No dump, so no target gets one: every location records (and alerts) the cause.
            reason = exc.message if isinstance(exc, SelfBackupError) else str(exc)
            targets = tuple(
                SelfBackupTarget(
                    location.public_id,
                    location.name,
                    location.display_uri,
                    None,
                    error=f"the database dump failed: {reason}",
                )
                for location in chosen
            )
        else:
            source = LocalObjectStore(directory)
            targets = tuple(_store_one(location, source, data_key, now) for location in chosen)
    database = manifest["database"]
    for location, target in zip(chosen, targets, strict=True):
        if target.ok:
            logger.info(
                "self-backup stored on %s (%s): snapshot %s, %d bytes",
                location.name,
                location.public_id,
                target.snapshot_id,
                database["bytes"],
            )
        else:
            logger.error(
                "self-backup to %s (%s) failed: %s", location.name, location.public_id, target.error
            )
        _alert(location, target, now)
    return SelfBackupResult(
        created_at=now,
        vendor=database["vendor"],
        dump_bytes=database.get("bytes", 0),
        dump_sha256=database.get("sha256", ""),
        counts=manifest["counts"],
        targets=targets,
    )


def self_backup_run_by_ids(location_ids: Sequence[str] | None = None) -> SelfBackupResult:
    """For the task and the command: location public ids in (None: the configured ones)."""
    return self_backup_run(locations=self_backup_locations(location_ids))
