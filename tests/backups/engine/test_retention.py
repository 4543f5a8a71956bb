"""Retention selection against an independent model, and GC that never loses a live chunk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from backups.engine import (
    RetentionPolicy,
    backup,
    forget,
    garbage_collect,
    generate_data_key,
    init_repository,
    list_snapshots,
    load_manifest,
    restore,
    select_snapshots_to_keep,
    verify,
)
from backups.engine.repository import list_chunks
from backups.storage import LocalObjectStore, ObjectStore
from tests.backups.engine.conftest import CHUNK, read_tree

POLICY_NAMES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _model_bucket(name: str, t: datetime) -> object:
    # Written independently of the engine: calendar arithmetic instead of strftime keys.
    utc = t.astimezone(UTC)
    if name == "hourly":
        return utc.replace(minute=0, second=0, microsecond=0)
    if name == "daily":
        return utc.date()
    if name == "weekly":
        return utc.date() - timedelta(days=utc.weekday())  # the Monday starting the ISO week
    if name == "monthly":
        return date(utc.year, utc.month, 1)
    return utc.year


def model_keep(snapshots: list[tuple[str, datetime]], counts: dict[str, int]) -> set[str]:
    """Keep the n newest, plus the newest snapshot of each of the n newest buckets per period."""
    if not any(counts.values()):
        return {sid for sid, _ in snapshots}
    newest_first = sorted(snapshots, key=lambda s: (s[1], s[0]), reverse=True)
    keep = {sid for sid, _ in newest_first[: counts["last"]]}
    for name in POLICY_NAMES[1:]:
        newest_in_bucket: dict[object, tuple[str, datetime]] = {}
        for snap in newest_first:
            newest_in_bucket.setdefault(_model_bucket(name, snap[1]), snap)
        latest = sorted(newest_in_bucket.values(), key=lambda s: (s[1], s[0]), reverse=True)
        keep |= {sid for sid, _ in latest[: counts[name]]}
    return keep


offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
# hypothesis takes naive bounds and attaches the zones itself; the range spans year ends.
times = st.datetimes(
    min_value=datetime(2019, 12, 20),  # noqa: DTZ001
    max_value=datetime(2021, 1, 10),  # noqa: DTZ001
    timezones=offsets,
)
snapshot_lists = st.lists(times, max_size=60).map(
    lambda ts: [(f"snap-{i:03d}", t) for i, t in enumerate(ts)]
)


@settings(max_examples=400, deadline=None)
@given(snapshots=snapshot_lists, counts=st.tuples(*[st.integers(0, 6)] * 6))
def test_selection_matches_model(
    snapshots: list[tuple[str, datetime]], counts: tuple[int, ...]
) -> None:
    policy = dict(zip(POLICY_NAMES, counts, strict=True))
    decision = select_snapshots_to_keep(
        snapshots, **{f"keep_{name}": n for name, n in policy.items()}
    )
    kept = {ref.id for ref in decision.keep}
    removed = {ref.id for ref in decision.remove}
    assert kept == model_keep(snapshots, policy)
    assert kept | removed == {sid for sid, _ in snapshots}
    assert not kept & removed
    assert set(decision.reasons) == kept


def test_selection_example_in_utc_buckets() -> None:
    base = datetime(2024, 12, 30, 23, 30, tzinfo=UTC)  # a Monday, ISO week 2025-W01
    snaps = [(f"s{i}", base + timedelta(minutes=20 * i)) for i in range(6)]
    # 23:30, 23:50 on Dec 30; 00:10 .. 01:10 on Dec 31.
    decision = select_snapshots_to_keep(snaps, keep_daily=2, keep_yearly=1)
    assert sorted(ref.id for ref in decision.keep) == ["s1", "s5"]
    assert decision.reasons["s5"] == ["daily", "yearly"]
    assert decision.reasons["s1"] == ["daily"]
    everything = select_snapshots_to_keep(snaps)
    assert len(everything.keep) == 6, "an empty policy keeps everything"


file_sets = st.lists(
    st.dictionaries(
        st.sampled_from([f"f{i}" for i in range(6)]),
        st.sampled_from([b"", b"a" * 10, b"b" * 70_000, b"c" * 140_000, b"d"]),
        min_size=1,
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=15, deadline=None)
@given(versions=file_sets, keep=st.lists(st.booleans(), min_size=5, max_size=5))
def test_gc_never_deletes_a_referenced_chunk(
    versions: list[dict[str, bytes]], keep: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = LocalObjectStore(f"{tmp}/src", create=True, fsync=False)
        target = LocalObjectStore(f"{tmp}/tgt", create=True, fsync=False)
        data_key = generate_data_key()
        init_repository(target, "r", os.urandom(32), data_key)
        trees = {}
        parent = None
        for n, files in enumerate(versions):
            for info in list(source.list("")):
                source.delete_versions([(info.key, None)])
            for path, data in files.items():
                source.put(path, data)
            result = backup(
                source,
                "",
                [(target, "r")],
                data_key,
                parent,
                chunk_size=CHUNK,
                repository_format=1,
                threads=2,
                now=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=n),
            )
            trees[result.manifest_id] = files
            parent = result.manifest
        doomed = [sid for sid, k in zip(trees, keep, strict=False) if not k]
        target.delete_versions([(f"r/snapshots/{sid}", None) for sid in doomed])

        collected = garbage_collect(target, "r", data_key, min_age=timedelta(0))

        survivors = [ref.id for ref in list_snapshots(target, "r")]
        assert survivors == [sid for sid in trees if sid not in doomed]
        live = set()
        for sid in survivors:
            report = verify(target, "r", data_key, sid, read_data_subset=1.0)
            assert report.ok, report
            destination = LocalObjectStore(f"{tmp}/out-{sid}", create=True, fsync=False)
            restore(target, "r", data_key, sid, destination, "")
            assert read_tree(destination, "") == trees[sid]
            live |= load_manifest(target, "r", data_key, sid).chunk_ids()
        assert set(list_chunks(target, "r")) == live, "every remaining chunk is referenced"
        if not survivors:
            assert list_chunks(target, "r") == {}
        assert collected.chunks_deleted == collected.chunks_total - len(list_chunks(target, "r"))


def test_forget_then_gc(
    make_store: Callable[[], ObjectStore],
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, target = make_local_store(), make_store()
    init_target(target, "r")
    day = datetime(2025, 5, 1, 9, tzinfo=UTC)
    parent = None
    for n in range(4):
        source.put("shared", b"s" * 1000)
        source.put("daily", f"content of day {n}".encode())
        parent = backup(
            source,
            "",
            [(target, "r")],
            data_key,
            parent,
            chunk_size=CHUNK,
            repository_format=1,
            now=day + timedelta(days=n),
        ).manifest
    decision, deleted = forget(target, "r", RetentionPolicy(keep_last=2))
    assert [ref.time.day for ref in decision.remove] == [2, 1]
    assert deleted.errors == []
    assert [ref.time.day for ref in list_snapshots(target, "r")] == [3, 4]
    assert len(list_chunks(target, "r")) == 5

    young = garbage_collect(target, "r", data_key, now=datetime.now(UTC))
    assert young.chunks_deleted == 0
    assert young.chunks_too_young == 2, "fresh chunks wait out the grace period"

    dry = garbage_collect(target, "r", data_key, min_age=timedelta(0), dry_run=True)
    assert dry.chunks_deleted == 2
    assert len(list_chunks(target, "r")) == 5
    done = garbage_collect(target, "r", data_key, min_age=timedelta(0))
    assert done.chunks_deleted == 2
    assert done.chunks_referenced == 3
    assert len(list_chunks(target, "r")) == 3
