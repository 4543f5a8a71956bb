"""Retention: which snapshots to keep (restic `forget` semantics), then reclaim unused chunks.

Legal holds are the caller's business: a dataset under hold must not reach `forget` or
`garbage_collect` at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backups.engine.crypto import DatasetKeys
from backups.engine.repack import DEFAULT_MIN_USED, PackCollectResult, collect_packs
from backups.engine.repository import (
    SnapshotRef,
    chunk_object,
    chunks_prefix,
    list_snapshots,
    referenced_ids,
    snapshot_object,
)
from backups.storage import DeleteResult, ObjectStore


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def is_empty(self) -> bool:
        return not any(vars(self).values())


@dataclass
class RetentionDecision:
    keep: list[SnapshotRef] = field(default_factory=list)
    remove: list[SnapshotRef] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)


def _iso_week(t: datetime) -> str:
    year, week, _ = t.isocalendar()
    return f"{year:04d}-W{week:02d}"


# Bucket keys are monotonic in time, so equal keys are contiguous in a time-sorted list.
BUCKETS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("hourly", lambda t: t.strftime("%Y-%m-%dT%H")),
    ("daily", lambda t: t.strftime("%Y-%m-%d")),
    ("weekly", _iso_week),
    ("monthly", lambda t: t.strftime("%Y-%m")),
    ("yearly", lambda t: t.strftime("%Y")),
)


def select_snapshots_to_keep(
    snapshots: Iterable[tuple[str, datetime]],
    *,
    keep_last: int = 0,
    keep_hourly: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    keep_yearly: int = 0,
) -> RetentionDecision:
    """Decide which snapshots survive, as `restic forget --keep-*` does, in UTC calendar buckets.

    Walking from newest to oldest: keep_last keeps the n newest; each keep_<period> keeps the
    newest snapshot of each of the n most recent periods that have a snapshot (ISO weeks for
    weekly). A snapshot kept by any rule is kept. With no rule set at all, everything is kept
    (an empty policy never deletes). Ties in time are broken by id, newest = larger id.
    """
    policy = RetentionPolicy(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly
    )
    refs = sorted(
        (SnapshotRef(sid, t) for sid, t in snapshots),
        key=lambda ref: (ref.time, ref.id),
        reverse=True,
    )
    decision = RetentionDecision()
    if policy.is_empty:
        decision.keep = refs
        decision.reasons = {ref.id: ["no policy"] for ref in refs}
        return decision

    budgets = {
        "hourly": keep_hourly,
        "daily": keep_daily,
        "weekly": keep_weekly,
        "monthly": keep_monthly,
        "yearly": keep_yearly,
    }
    last_bucket: dict[str, str | None] = dict.fromkeys(budgets)
    for index, ref in enumerate(refs):
        utc = ref.time.astimezone(UTC)
        reasons = ["last"] if index < keep_last else []
        for name, bucket_of in BUCKETS:
            bucket = bucket_of(utc)
            if budgets[name] > 0 and bucket != last_bucket[name]:
                last_bucket[name] = bucket
                budgets[name] -= 1
                reasons.append(name)
        if reasons:
            decision.keep.append(ref)
            decision.reasons[ref.id] = reasons
        else:
            decision.remove.append(ref)
    return decision


def forget(
    store: ObjectStore,
    base: str,
    policy: RetentionPolicy,
    *,
    before_delete: Callable[[RetentionDecision], None] | None = None,
) -> tuple[RetentionDecision, DeleteResult]:
    """Apply a retention policy to one repository: delete the manifests it does not keep.

    Chunks stay until `garbage_collect`; a forgotten snapshot is gone once its manifest is.
    `before_delete(decision)` runs once the decision is made and before anything is deleted:
    a caller that records snapshots elsewhere marks them forgotten there first, so a crash in
    between leaves a forgotten record whose manifest the next run deletes, never a live record
    of a deleted manifest.
    """
    decision = select_snapshots_to_keep(
        list_snapshots(store, base),
        keep_last=policy.keep_last,
        keep_hourly=policy.keep_hourly,
        keep_daily=policy.keep_daily,
        keep_weekly=policy.keep_weekly,
        keep_monthly=policy.keep_monthly,
        keep_yearly=policy.keep_yearly,
    )
    if before_delete is not None:
        before_delete(decision)
    deleted = store.delete_versions(
        (snapshot_object(base, ref.id), None) for ref in decision.remove
    )
    return decision, deleted


@dataclass
class GarbageCollectResult:
    snapshots: int = 0
    chunks_total: int = 0
    chunks_referenced: int = 0
    chunks_deleted: int = 0
    bytes_deleted: int = 0
    chunks_too_young: int = 0
    deleted: DeleteResult = field(default_factory=DeleteResult)
    # Format 2 (packs): what collect_packs did.
    packs: PackCollectResult = field(default_factory=PackCollectResult)


def garbage_collect(
    store: ObjectStore,
    base: str,
    data_key: bytes,
    *,
    min_age: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    dry_run: bool = False,
    min_used: float = DEFAULT_MIN_USED,
) -> GarbageCollectResult:
    """Delete chunks (format 1) and packs (format 2) no remaining snapshot references, and
    repack format-2 packs of which less than `min_used` is still referenced.

    Rules: every manifest must load, or nothing is deleted (a partial view would condemn live
    chunks); a chunk younger than `min_age` is spared, because a backup in progress may have
    uploaded it before writing its manifest. Callers still serialize GC and backups of one
    dataset (a backup that found an old unreferenced chunk reuses it without re-uploading).
    """
    keys = DatasetKeys.from_data_key(data_key)
    snapshots = list_snapshots(store, base)
    # Per format: a small file's format-1 chunk and format-2 blob share an id (the same keyed
    # hash of the same bytes), but not a place.
    referenced, referenced_blobs = referenced_ids(store, base, keys, (ref.id for ref in snapshots))

    cutoff = (now or datetime.now(UTC)) - min_age
    prefix = chunks_prefix(base)
    result = GarbageCollectResult(snapshots=len(snapshots), chunks_referenced=len(referenced))
    doomed: list[tuple[str, int]] = []
    for info in store.list(prefix):
        result.chunks_total += 1
        cid = info.key[len(prefix) :]
        if cid in referenced:
            continue
        if info.mtime > cutoff:
            result.chunks_too_young += 1
            continue
        doomed.append((cid, info.size))
    if not dry_run:
        result.deleted = store.delete_versions((chunk_object(base, cid), None) for cid, _ in doomed)
        gone = {key for key, _ in result.deleted.deleted}
        doomed = [(cid, size) for cid, size in doomed if chunk_object(base, cid) in gone]
    result.chunks_deleted = len(doomed)
    result.bytes_deleted = sum(size for _, size in doomed)
    result.packs = collect_packs(
        store, base, keys, referenced_blobs, cutoff=cutoff, dry_run=dry_run, min_used=min_used
    )
    result.deleted.extend(result.packs.deleted)
    result.bytes_deleted += result.packs.bytes_deleted
    return result
