"""Verification, after execution: every planned prefix is listed again (all versions), the
dataset keys must be gone from the database and every target, and a chunk an object lock
retains must not decrypt with whatever is left. The report goes into the certificate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backups import engine
from backups.engine.crypto import DatasetKeys, decrypt_chunk
from backups.models import DatasetProtection
from backups.services import store_for_location
from backups.services.policies import dataset_key_context
from backups.storage import ObjectStore, StorageError
from clients.models import Dataset
from kernel.crypto import master_key
from lifecycle.models import DeletionItem, DeletionRequest, ItemRole
from lifecycle.services.deletion.common import request_datasets
from lifecycle.services.deletion.plan import _versions_under


def _key_readable(dataset: Dataset, store: ObjectStore, base: str) -> bool:
    """Whether any copy of the dataset key still opens (database or the target's `key`)."""
    protection = DatasetProtection.objects.filter(dataset=dataset).first()
    if protection is not None and protection.wrapped_key:
        return True
    try:
        engine.load_data_key(store, base, master_key(), context=dataset_key_context(dataset))
    except (engine.EngineError, StorageError):
        return False
    return True


def deletion_verify(request: DeletionRequest, items: Sequence[DeletionItem]) -> dict[str, Any]:
    """List every prefix again, all versions: zero may remain but lock-retained versions;
    the keys are gone; a retained chunk does not decrypt."""
    report: dict[str, Any] = {"locations": [], "ok": True, "method": "list_object_versions"}
    for item in items:
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
            "retained_by_lock": [
                {
                    **r,
                    "status": "retained by lock until "
                    + r["retain_until"]
                    + ", unreadable: key destroyed",
                }
                for r in item.retained
            ],
        }
        if item.role == ItemRole.BACKUP:
            base = item.prefix.rstrip("/")
            entry["key_readable"] = _key_readable(item.dataset, store, base)
            # A chunk (format 1) or a pack (format 2) an object lock keeps must not open.
            chunk = next(
                (r for r in item.retained if "/chunks/" in r["key"] or "/data/" in r["key"]), None
            )
            if chunk is not None:
                entry["retained_chunk_decrypts"] = _chunk_decrypts(item.dataset, store, base, chunk)
            if entry["key_readable"] or entry.get("retained_chunk_decrypts"):
                report["ok"] = False
        if unexpected:
            report["ok"] = False
        report["locations"].append(entry)
    datasets = request_datasets(request)
    report["database_keys_destroyed"] = not DatasetProtection.objects.filter(
        dataset__in=datasets, wrapped_key__isnull=False
    ).exists()
    report["ok"] = report["ok"] and report["database_keys_destroyed"]
    return report


def _chunk_decrypts(dataset: Dataset, store: ObjectStore, base: str, chunk: dict[str, Any]) -> bool:
    """Try to open a retained chunk with whatever key is left: it must fail."""
    try:
        data_key = engine.load_data_key(
            store, base, master_key(), context=dataset_key_context(dataset)
        )
        if "/data/" in chunk["key"]:
            return engine.pack_opens(store, base, data_key, chunk["key"].rsplit("/", 1)[-1])
        sealed = store.get(chunk["key"])
        keys = DatasetKeys.from_data_key(data_key)
        decrypt_chunk(keys, chunk["key"].rsplit("/", 1)[-1], sealed)
    except (engine.EngineError, StorageError, ValueError):
        return False
    return True
