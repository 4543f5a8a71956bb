"""A prune and a backup of the same repository never overlap.

A backup re-uses every chunk its target already holds, and garbage collection deletes chunks no
snapshot references: run together, a backup could record a snapshot naming a chunk the
collection has just deleted. Both sides therefore announce themselves before looking for the
other — the backup with its active RunTarget row (written when the run is created), the prune
with a lock object in the repository (`<base>/locks/prune-<uuid>`) — and step back when they
see the other: the prune skips the pair, the backup is retried later. Whichever looks second
sees the first, so at most one goes ahead.

Prunes run only inside the daily retention sweep, one at a time, and that task is killed at its
time limit: a prune lock older than PRUNE_LOCK_STALE_AFTER (that limit) belongs to a worker that
died and is ignored, and a finishing prune removes the locks older than its own (dead ones: no
two prunes of a repository overlap).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from backups.storage import ObjectStore, StorageError

# The retention sweep's hard time limit (backups.tasks.retention_sweep_task uses it).
PRUNE_LOCK_STALE_AFTER = timedelta(hours=3, minutes=5)


class RepositoryBusy(StorageError):
    """The target's repository is being pruned; the backup waits for its next attempt."""


def _locks(base: str) -> str:
    return f"{base}/locks/" if base else "locks/"


def prune_lock_acquire(store: ObjectStore, base: str, *, now: datetime | None = None) -> str:
    """Write this prune's lock object; returns its key (release it with prune_lock_release)."""
    now = now or timezone.now()
    key = f"{_locks(base)}prune-{uuid.uuid4().hex}"
    # Not kept by the target's Object Lock retention: it is gone again within the hour.
    store.put(key, json.dumps({"started_at": now.isoformat()}).encode(), retain=False)
    return key


def prune_lock_release(store: ObjectStore, base: str, key: str) -> None:
    """Remove this prune's lock, and the locks of earlier prunes that died holding one."""
    mine = next((info for info in store.list(key) if info.key == key), None)
    doomed = [key]
    if mine is not None:
        doomed += [
            info.key
            for info in store.list(_locks(base))
            if info.key != key
            and info.key.rsplit("/", 1)[-1].startswith("prune-")
            and info.mtime <= mine.mtime
        ]
    store.delete_versions([(doomed_key, None) for doomed_key in doomed])


def prune_lock_check(store: ObjectStore, base: str, *, now: datetime | None = None) -> None:
    """Raise RepositoryBusy when a live prune holds the repository."""
    now = now or timezone.now()
    for info in store.list(_locks(base)):
        name = info.key.rsplit("/", 1)[-1]
        if name.startswith("prune-") and now - info.mtime < PRUNE_LOCK_STALE_AFTER:
            raise RepositoryBusy(
                f"{store.describe()}: the repository is being pruned (since "
                f"{info.mtime:%Y-%m-%d %H:%M} UTC); the backup is retried after it"
            )
