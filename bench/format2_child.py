"""One format-2 backup of a local directory into a local repository, or (`--restore REPO DIR`)
a restore of its newest snapshot, in its own process (so its peak RSS is the engine's alone).
The parent snapshot is the repository's newest, as a scheduled run uses. Prints one JSON line:
seconds, maxrss_mb, stats."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time

from backups.engine import backup, init_repository, list_snapshots, load_manifest, restore
from backups.engine.crypto import DatasetKeys
from backups.engine.packs import load_pack_index
from backups.storage import LocalObjectStore
from bench.tools import vm_hwm_mb

BASE = "dataset"


def _report(started: float, stats: dict[str, object]) -> None:
    """The one JSON line the bench reads: seconds since `started`, this process's own peak RSS
    (VmHWM: ru_maxrss would carry the benchmark process's peak across the fork)."""
    seconds = time.monotonic() - started
    maxrss_mb = vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "maxrss_mb": maxrss_mb, "stats": stats}))


def _restore(repo_dir: str, out_dir: str) -> None:
    with open(repo_dir + ".datakey", "rb") as stream:
        data_key = stream.read()
    store = LocalObjectStore(repo_dir)
    started = time.monotonic()
    latest = list_snapshots(store, BASE)[-1]
    result = restore(store, BASE, data_key, latest.id, LocalObjectStore(out_dir, create=True))
    _report(started, {"files": result.files_restored, "bytes": result.bytes_restored})


def main() -> None:
    if sys.argv[1] == "--restore":
        _restore(sys.argv[2], sys.argv[3])
        return
    source_dir, repo_dir = sys.argv[1], sys.argv[2]
    master = bytes.fromhex(os.environ.setdefault("BENCH_MASTER_KEY", "11" * 32))
    key_file = repo_dir + ".datakey"
    if not os.path.exists(key_file):
        with open(key_file, "wb") as out:
            out.write(os.urandom(32))
    with open(key_file, "rb") as stream:
        data_key = stream.read()
    store = LocalObjectStore(repo_dir, create=True)
    source = LocalObjectStore(source_dir)
    started = time.monotonic()
    init_repository(store, BASE, master, data_key)
    refs = list_snapshots(store, BASE)
    keys = DatasetKeys.from_data_key(data_key)
    # As a scheduled run does: the pack index read once (blob locations only) for the parent's
    # file list and the backup, and the parent's list streamed, never loaded whole.
    index = load_pack_index(store, BASE, keys, packs=False)
    parent = (
        load_manifest(store, BASE, data_key, refs[-1].id, index=index, files=False)
        if refs
        else None
    )
    result = backup(source, "", [(store, BASE)], data_key, parent, indexes=[index])
    _report(started, dataclasses.asdict(result.stats) | {"skipped_keys": []})


if __name__ == "__main__":
    main()
