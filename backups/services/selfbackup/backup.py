"""Backing up: dump the database once and store it in every chosen place, each written
independently, with an alert per failing storage location and its resolution on the next
success (an operator directory's failure is the operator's: logged, never a tenant's alert)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone

from backups import engine
from backups.models import AlertKind
from backups.services.alerts import alert_clear, alert_raise
from backups.services.selfbackup.common import (
    KEY_CONTEXT,
    SELF_REPOSITORY,
    OperatorDirectory,
    SelfBackupError,
    SelfBackupPlace,
    SelfBackupResult,
    SelfBackupTarget,
    operator_directory_check,
    self_backup_data_key,
    self_backup_locations,
    self_repository_base,
)
from backups.services.selfbackup.database import _dump, _scratch
from backups.services.stores import store_for_location
from backups.storage import EndpointUnreachable, LocalObjectStore, ObjectStore, StorageError
from kernel.crypto import SealError, master_key

logger = logging.getLogger(__name__)

RETENTION = engine.RetentionPolicy(keep_last=3, keep_daily=14, keep_weekly=8)
# A target that may answer again soon: the task retries just those locations.
_TRANSIENT = (EndpointUnreachable,)
_FAILURES = (StorageError, engine.EngineError, SealError, OSError)


def _target(place: SelfBackupPlace, snapshot_id: str | None, **failure: Any) -> SelfBackupTarget:
    if isinstance(place, OperatorDirectory):
        return SelfBackupTarget(None, place.name, place.uri, snapshot_id, **failure)
    return SelfBackupTarget(place.public_id, place.name, place.display_uri, snapshot_id, **failure)


def _open(place: SelfBackupPlace) -> tuple[ObjectStore, str]:
    """The place's store and the self repository's base key in it."""
    if isinstance(place, OperatorDirectory):
        # Checked again now, with the roots of this moment (a root may have been added since).
        directory = operator_directory_check(str(place.path)).path
        # Only the operator needs to read it (what is in it is encrypted all the same).
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return LocalObjectStore(directory), SELF_REPOSITORY
    return store_for_location(place, create=True), self_repository_base(place)


def _store_one(
    place: SelfBackupPlace, source: ObjectStore, data_key: bytes, created: datetime
) -> SelfBackupTarget:
    try:
        store, base = _open(place)
        engine.init_repository(store, base, master_key(), data_key, context=KEY_CONTEXT)
        result = engine.backup(source, "", [(store, base)], data_key, now=created, threads=4)
    except SelfBackupError as exc:
        return _target(place, None, error=exc.message)
    except _FAILURES as exc:
        return _target(
            place,
            None,
            error=str(exc) or type(exc).__name__,
            transient=isinstance(exc, _TRANSIENT),
        )
    try:
        engine.forget(store, base, RETENTION)
        engine.garbage_collect(store, base, data_key)
    except _FAILURES as exc:
        # The new snapshot is stored; pruning older ones can wait for the next run.
        logger.warning("self-backup retention on %s failed: %s", place.name, exc)
    return _target(place, result.manifest_id)


def _alert(place: SelfBackupPlace, target: SelfBackupTarget, now: datetime) -> None:
    """A storage location's failure alerts the organization owning it (the operator chose it,
    but its admins hold the credentials and can fix it). An operator directory belongs to no
    organization: its failure is logged, the task fails and `backup_self` exits non-zero; it
    never becomes a tenant's alert, which would tell every organization's admins about the
    operator's disk and ask them to fix what only the operator can."""
    if isinstance(place, OperatorDirectory):
        return
    location = place
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


def _chosen(location_ids: Sequence[str] | None) -> list[SelfBackupPlace]:
    try:
        return self_backup_locations(location_ids)
    except SelfBackupError as exc:
        # The nightly task has no one to answer: the worker's log says why nothing was written.
        logger.error("self-backup not run: %s", exc.message)
        raise


def self_backup_run(
    *, locations: Sequence[SelfBackupPlace] | None = None, now: datetime | None = None
) -> SelfBackupResult:
    """Dump the database once and store it in every chosen place (see the package docstring).

    Rules: the places are the operator's choice (`self_backup_locations`: with several
    organizations never, by default, one organization's storage); the dump and manifest.json's
    counts come from one snapshot of the database; the plaintext dump exists only in a 0700
    scratch directory during the run; each place is written independently and its outcome
    recorded (log line; for a storage location an alert on failure, resolution on success), a
    failed dump as every place's failure; no place at all is an error (nothing would protect
    the system).
    """
    now = now or timezone.now()
    chosen = list(locations) if locations is not None else _chosen(None)
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
                _target(place, None, error=f"the database dump failed: {reason}")
                for place in chosen
            )
        else:
            source = LocalObjectStore(directory)
            targets = tuple(_store_one(place, source, data_key, now) for place in chosen)
    database = manifest["database"]
    for place, target in zip(chosen, targets, strict=True):
        if target.ok:
            logger.info(
                "self-backup stored on %s (%s): snapshot %s, %d bytes",
                target.location_name,
                target.entry,
                target.snapshot_id,
                database["bytes"],
            )
        else:
            logger.error(
                "self-backup to %s (%s) failed: %s",
                target.location_name,
                target.entry,
                target.error,
            )
        _alert(place, target, now)
    return SelfBackupResult(
        created_at=now,
        vendor=database["vendor"],
        dump_bytes=database.get("bytes", 0),
        dump_sha256=database.get("sha256", ""),
        counts=manifest["counts"],
        targets=targets,
    )


def self_backup_run_by_ids(location_ids: Sequence[str] | None = None) -> SelfBackupResult:
    """For the task and the command: entries in (location ids or operator directories, as
    AGENCYOPS_SELF_BACKUP_LOCATIONS takes them; None: the configured ones)."""
    return self_backup_run(locations=_chosen(location_ids))
