"""Verification, after execution: every planned prefix is listed again (all versions), the
dataset keys must be gone from the database and every target, and a chunk an object lock
retains must not decrypt with whatever is left. The report goes into the certificate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backups import engine
from backups.engine.crypto import DatasetKeys, decrypt_chunk
from backups.models import DatasetProtection
from backups.services import repository_keys_left, store_for_location
from backups.services.exports import export_inbox_left
from backups.services.sources import database_exists, mirror_caches_left
from backups.sources.process import SourceError
from backups.storage import ObjectStore, StorageError
from clients.models import DATABASE_KINDS
from lifecycle.models import DeletionItem, DeletionRequest, ItemRole
from lifecycle.services.deletion.common import request_datasets
from lifecycle.services.deletion.plan import _versions_under


def _keys_left(item: DeletionItem, store: ObjectStore, base: str) -> list[bytes]:
    """The dataset keys whatever is left still opens (see repository_keys_left)."""
    key = engine.key_object(base)
    versions = [r["version_id"] for r in item.retained if r["key"] == key and r["version_id"]]
    return repository_keys_left(
        location=item.location,
        store=store,
        base=base,
        dataset=item.dataset,
        retained_key_versions=versions,
    )


def _retained_readable(item: DeletionItem, entry: dict[str, Any]) -> bool:
    """A backup's retained versions are ciphertext: readable only while a key copy opens. A
    primary or restored copy is the data itself, which AgencyOps never encrypted."""
    if item.role != ItemRole.BACKUP:
        return True
    return bool(entry.get("key_readable") or entry.get("key_check_error"))


def _status(item: DeletionItem, entry: dict[str, Any], retained: dict[str, Any]) -> str:
    until = f"retained by lock until {retained['retain_until']}"
    if item.role != ItemRole.BACKUP:
        return f"{until} — readable: not encrypted by AgencyOps; deleted when the lock ends"
    if _retained_readable(item, entry):
        return f"{until} — READABLE: a copy of the key still opens"
    return f"{until} — unreadable: key destroyed"


def deletion_verify(request: DeletionRequest, items: Sequence[DeletionItem]) -> dict[str, Any]:
    """List every prefix again, all versions: zero may remain but lock-retained versions;
    the keys are gone; a retained chunk does not decrypt."""
    report: dict[str, Any] = {"locations": [], "ok": True, "method": "list_object_versions"}
    for item in items:
        if item.location.kind in DATABASE_KINDS:
            report["locations"].append(_database_verified(item))
            report["ok"] = report["ok"] and not report["locations"][-1]["versions_remaining"]
            continue
        store = store_for_location(item.location)
        retained = {(r["key"], r["version_id"]) for r in item.retained}
        remaining = list(_versions_under(store, item.prefix))
        unexpected = [v for v in remaining if (v.key, v.version_id) not in retained]
        entry: dict[str, Any] = {
            "location": item.location.name,
            "role": item.role,
            "prefix": item.prefix,
            "versions_remaining": len(remaining),
            "unexpected": [f"{v.key}@{v.version_id}" for v in unexpected[:20]],
        }
        if item.role == ItemRole.BACKUP:
            base = item.prefix.rstrip("/")
            try:
                keys = _keys_left(item, store, base)
            except StorageError as exc:
                # A retained copy of the key that cannot be read proves nothing: fail closed.
                keys = []
                entry["key_check_error"] = str(exc)
                report["ok"] = False
            entry["key_readable"] = bool(keys)
            # A chunk (format 1) or a pack (format 2) an object lock keeps must not open.
            chunk = next(
                (r for r in item.retained if "/chunks/" in r["key"] or "/data/" in r["key"]), None
            )
            if chunk is not None:
                entry["retained_chunk_decrypts"] = _chunk_decrypts(keys, store, base, chunk)
            if entry["key_readable"] or entry.get("retained_chunk_decrypts"):
                report["ok"] = False
        entry["retained_by_lock"] = [
            {**r, "readable": _retained_readable(item, entry), "status": _status(item, entry, r)}
            for r in item.retained
        ]
        if unexpected:
            report["ok"] = False
        report["locations"].append(entry)
    datasets = request_datasets(request)
    mirrors = mirror_caches_left(datasets)
    if mirrors:
        # A git mirror on a worker host this deletion did not run on: fail closed, name it.
        report["mirror_caches_left"] = mirrors
        report["ok"] = False
    inboxes = [str(d.public_id) for d in datasets if export_inbox_left(d)]
    if inboxes:
        # Uploaded SaaS exports waiting in this worker's scratch: they must be gone too.
        report["export_inboxes_left"] = inboxes
        report["ok"] = False
    report["database_keys_destroyed"] = not DatasetProtection.objects.filter(
        dataset__in=datasets, wrapped_key__isnull=False
    ).exists()
    report["ok"] = report["ok"] and report["database_keys_destroyed"]
    return report


def _database_verified(item: DeletionItem) -> dict[str, Any]:
    """A dropped database, checked in the server's own list of databases; a server that
    cannot be asked proves nothing (fails closed)."""
    entry: dict[str, Any] = {
        "location": item.location.name,
        "role": item.role,
        "database": item.prefix,
        "method": "list databases",
        "retained_by_lock": [],
        "unexpected": [],
    }
    try:
        left = database_exists(item.location, item.prefix)
    except SourceError as exc:
        entry["check_error"] = str(exc)
        left = True
    entry["versions_remaining"] = int(left)
    return entry


def _chunk_decrypts(
    keys: list[bytes], store: ObjectStore, base: str, chunk: dict[str, Any]
) -> bool:
    """Try to open a retained chunk with every key left: it must fail."""
    name = chunk["key"].rsplit("/", 1)[-1]
    for data_key in keys:
        try:
            if "/data/" in chunk["key"]:
                if engine.pack_opens(store, base, data_key, name):
                    return True
                continue
            decrypt_chunk(DatasetKeys.from_data_key(data_key), name, store.get(chunk["key"]))
        except (engine.EngineError, StorageError, ValueError):
            continue
        return True
    return False
