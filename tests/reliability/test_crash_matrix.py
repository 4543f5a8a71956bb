"""The crash matrix: real workers SIGKILLed at seeded random points during backup, retention
pruning, restore and deletion; a new worker takes over; nothing is lost, nothing is half-done.

Each operation is measured once uninterrupted, then run CASES times. In case i the kill lands a
`random.Random(f"{operation}-{i}")` share of the measured duration after a worker claimed the
work (some land after it finished: that must be harmless too). At the kill the state must
already be safe (no complete snapshot without its manifest, no certificate before
verification, nothing deleted outside the plan). Then the next worker of the chain finishes the
work, through Redis redelivery or, on the filesystem broker, the recovery task beat would send,
and the invariants are checked: every snapshot and every manifest on the targets verifies with
every chunk read; restores are byte-identical; deletions reach `verified` with zero versions
under the plan's prefixes and every other object untouched; the access log holds exactly one
event per restore and download requested, and its chain verifies.

`make test` runs CASES = 3 per operation; `make reliability` sets AGENCYOPS_RELIABILITY_FULL=1
for 10. Both write their figures to var/reliability/crash_matrix.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from django.utils.text import slugify

from backups import engine
from backups.engine.crypto import DatasetKeys
from backups.engine.manifest import manifest_time
from backups.engine.packs import data_prefix, load_pack_index
from backups.models import (
    BackupPolicy,
    BackupRun,
    RestoreRun,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import (
    backup_run_create,
    backup_run_execute,
    dataset_data_key,
    policy_update,
    protection_create,
    repository_base,
    restore_request,
    snapshot_file_download,
    store_for_location,
)
from backups.storage import ObjectStore
from backups.tasks import backup_run_task, restore_run_task, retention_sweep_task, runs_recover_task
from clients import services as clients_services
from clients.models import Dataset, StorageLocation
from kernel.claims import STALE_AFTER
from kernel.tenancy import actor_for_user
from lifecycle import services as lifecycle_services
from lifecycle.models import (
    AccessEvent,
    DeletionCertificate,
    DeletionRequest,
    PendingAccessEvent,
)
from lifecycle.tasks import (
    access_events_drain_all_task,
    access_events_drain_task,
    deletion_request_execute_task,
    deletions_recover_task,
)
from tests.backups.conftest import Agency, write_files
from tests.backups.integration.support import Cluster, digest_files
from tests.factories import UserFactory
from tests.lifecycle.deletion_support import (
    all_versions,
    backup_now,
    versioned_bucket,
    write_versions,
)
from tests.reliability.crash_support import (
    Matrix,
    TripwireProxy,
    send,
    slow_link,
    succeeded,
)
from tests.reliability.test_s3_faults import RESULTS, _record

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FULL = os.environ.get("AGENCYOPS_RELIABILITY_FULL") == "1"
CASES = 10 if FULL else 3
MIB = 1024 * 1024
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


# --- shared checks ---


def _packs(store: ObjectStore, base: str) -> int:
    return sum(1 for _ in store.list(data_prefix(base)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _listed(location: StorageLocation, dataset: Dataset) -> set[str]:
    store = store_for_location(location)
    return {ref.id for ref in engine.list_snapshots(store, repository_base(location, dataset))}


def _assert_every_snapshot_has_its_manifest(dataset: Dataset) -> None:
    """The safe state at any instant: a Snapshot not forgotten is one whose manifest exists."""
    listed: dict[int, set[str]] = {}
    for snapshot in Snapshot.objects.filter(dataset=dataset, forgotten_at__isnull=True):
        location = snapshot.location
        if location.pk not in listed:
            listed[location.pk] = _listed(location, dataset)
        assert snapshot.manifest_id in listed[location.pk], (
            f"snapshot {snapshot.manifest_id} on {location.name} is marked complete, "
            "but its manifest is gone"
        )


def _verify_targets(dataset: Dataset, locations: Iterable[StorageLocation]) -> dict[str, int]:
    """Every Snapshot of the dataset has its manifest, and every manifest on every target
    (recorded or left by a crash) verifies with every chunk read back and authenticated."""
    data_key = dataset_data_key(dataset)
    records = set(
        Snapshot.objects.filter(dataset=dataset, forgotten_at__isnull=True).values_list(
            "location_id", "manifest_id"
        )
    )
    verified = unrecorded = 0
    for location in locations:
        store, base = store_for_location(location), repository_base(location, dataset)
        listed = {ref.id for ref in engine.list_snapshots(store, base)}
        missing = {m for loc, m in records if loc == location.pk} - listed
        assert not missing, f"recorded snapshots without a manifest on {location.name}: {missing}"
        for manifest_id in sorted(listed):
            report = engine.verify(store, base, data_key, manifest_id, read_data_subset=1.0)
            assert report.ok, (location.name, manifest_id, report.missing, report.corrupt)
            assert report.chunks_read == report.chunks_referenced
            verified += 1
            unrecorded += (location.pk, manifest_id) not in records
    return {"manifests_verified": verified, "manifests_without_a_live_record": unrecorded}


def _age_heartbeat(model: Any, pk: int, stale_after: timedelta) -> None:
    """The killed worker never beats again: age its last beat past `stale_after` rather than
    wait that long, so the work may be claimed again."""
    beat = model.objects.filter(pk=pk).values_list("heartbeat_at", flat=True).get()
    if beat is not None:
        model.objects.filter(pk=pk).update(heartbeat_at=beat - stale_after - timedelta(seconds=1))


def _status(model: Any, pk: int) -> str:
    return str(model.objects.filter(pk=pk).values_list("status", flat=True).get())


def _save(operation: str, figures: dict[str, Any]) -> None:
    """Merge this operation's figures into var/reliability/crash_matrix.json."""
    operations: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((RESULTS / "crash_matrix.json").read_text())
        if previous.get("full") == FULL:
            operations = dict(previous.get("operations", {}))
    operations[operation] = figures
    _record("crash_matrix", {"cases_per_operation": CASES, "operations": operations})


# --- backup ---

# About 9 MiB of new data per case over a 4 MiB/s link: two seconds of upload to interrupt.
BACKUP_LINK_BYTES_PER_SECOND = 4 * MIB
CHANGING_FILES = 8


def _backup_files(label: str) -> dict[str, bytes]:
    rng = random.Random(f"backup-data-{label}")
    # Sizes from 256 KiB to 2 MiB: sharing the link, the small ones are stored first, so kills
    # find some chunks of the run stored and others not.
    return {
        f"changing/part-{i}.bin": rng.randbytes((i + 1) * 256 * 1024) for i in range(CHANGING_FILES)
    }


def test_backups_killed_at_random_points_leave_only_complete_verified_snapshots(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    stable = {"stable/a.bin": random.Random(1).randbytes(MIB), "stable/notes.txt": b"notes\n"}
    dataset = agency.dataset("Crash backup", files={**stable, **_backup_files("warm-up")})
    source = agency.source_dir(dataset)
    disk = agency.local_location("Crash disk")
    with slow_link(
        agency.s3_endpoint, upload_bytes_per_second=BACKUP_LINK_BYTES_PER_SECOND
    ) as link:
        bucket = agency.s3_location("Crash bucket over a slow link", endpoint=link)
        targets = [bucket, disk]
        matrix = Matrix(cluster, "backup")

        def new_run() -> BackupRun:
            return backup_run_create(
                dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False
            )

        warm_up = new_run()
        matrix.measure(
            lambda: send(cluster, backup_run_task, str(warm_up.public_id)),
            lambda: _status(BackupRun, warm_up.pk) != RunStatus.PENDING,
            lambda: _status(BackupRun, warm_up.pk) in FINISHED,
        )
        assert _status(BackupRun, warm_up.pk) == RunStatus.SUCCEEDED, cluster.logs()

        for case in range(CASES):
            write_files(source, _backup_files(str(case)))
            expected = digest_files(source)
            run = new_run()
            delay = matrix.kill_at_random_point(
                case,
                lambda run=run: send(cluster, backup_run_task, str(run.public_id)),
                lambda run=run: _status(BackupRun, run.pk) != RunStatus.PENDING,
            )
            run.refresh_from_db()
            mid_run = run.status == RunStatus.RUNNING
            at_kill = f"{run.status}: {run.bytes_done} of {run.bytes_total} bytes"
            # Safe at the instant of the kill: no record of a snapshot without its manifest,
            # and none at all for a run still going.
            _assert_every_snapshot_has_its_manifest(dataset)
            if mid_run:
                assert not Snapshot.objects.filter(run=run).exists(), at_kill
                _age_heartbeat(BackupRun, run.pk, STALE_AFTER)
            matrix.restart(recover=lambda: send(cluster, runs_recover_task))

            done = cluster.wait_for(
                lambda run=run: BackupRun.objects.filter(pk=run.pk, status__in=FINISHED).first(),
                120,
                f"backup case {case} to finish after the kill",
            )
            logs = cluster.logs()
            assert done.status == RunStatus.SUCCEEDED, f"{done.error}\n{logs}"
            assert done.attempts == (2 if mid_run else 1), logs
            snapshots = list(Snapshot.objects.filter(run=run).select_related("location"))
            assert sorted(s.location_id for s in snapshots) == sorted(t.pk for t in targets)
            assert len({s.manifest_id for s in snapshots}) == 1
            store_of = {t.pk: (store_for_location(t), repository_base(t, dataset)) for t in targets}
            for snapshot in snapshots:
                store, base = store_of[snapshot.location_id]
                report = engine.verify(
                    store,
                    base,
                    dataset_data_key(dataset),
                    snapshot.manifest_id,
                    read_data_subset=1.0,
                )
                assert report.ok, (case, report.missing, report.corrupt)
            # Byte-identical to the source at this snapshot, from one target or the other.
            restored = agency.restore(snapshots[case % 2], tmp_path / f"restored-{case}")
            assert {path: _sha256(data) for path, data in restored.items()} == expected
            matrix.record(case, delay, mid_run=mid_run, at_kill=at_kill)

        verified = _verify_targets(dataset, targets)
    _save("backup", matrix.figures(**verified))


# --- retention pruning ---

PRUNE_SNAPSHOTS_PER_CASE = 3
PRUNE_KEEP_LAST = 2
# Every S3 request of the prune is answered this late (after S3 acted): it lasts long enough to
# be interrupted, and each request opens a window where storage changed and the worker has not
# heard.
PRUNE_S3_DELAY_SECONDS = 0.1


class _PruneScene:
    """A dataset kept `keep_last=2` on a local disk and an S3 bucket behind a slow proxy."""

    def __init__(self, agency: Agency, proxy: TripwireProxy, *, local: bool = True) -> None:
        self.agency = agency
        self.dataset = agency.dataset("Crash prune", files={"stable.bin": b"s" * 100_000})
        self.source = agency.source_dir(self.dataset)
        self.bucket = agency.s3_location("Crash prune bucket", endpoint=proxy.url)
        self.disk = agency.local_location("Crash prune disk") if local else None
        self.targets = [t for t in (self.disk, self.bucket) if t is not None]
        policy = BackupPolicy.objects.create(
            organization=agency.org,
            name="Keep the last two",
            frequency="daily",
            keep_last=PRUNE_KEEP_LAST,
        )
        protection = protection_create(self.dataset)
        protection.policy = policy
        protection.save()
        self.expected: dict[str, dict[str, str]] = {}  # manifest id -> digests of its files
        self.made: list[str] = []

    def snapshots(self, label: str) -> None:
        """Back up new content PRUNE_SNAPSHOTS_PER_CASE times (in this process), then age every
        pack and index on the disk past garbage collection's one-hour grace (S3's stay young)."""
        for k in range(PRUNE_SNAPSHOTS_PER_CASE):
            rng = random.Random(f"prune-data-{label}-{k}")
            write_files(self.source, {name: rng.randbytes(200_000) for name in ("a", "b", "c")})
            run = backup_run_create(
                dataset=self.dataset, trigger=Trigger.MANUAL, targets=self.targets, enqueue=False
            )
            done = backup_run_execute(str(run.public_id))
            assert done is not None
            assert done.status == RunStatus.SUCCEEDED, done.error
            manifest_id = Snapshot.objects.filter(run=run).values_list("manifest_id", flat=True)[0]
            self.expected[manifest_id] = digest_files(self.source)
            self.made.append(manifest_id)
        if self.disk is not None:
            root = Path(self.disk.prefix) / repository_base(self.disk, self.dataset)
            old = (timezone.now() - timedelta(hours=2)).timestamp()
            for stored in [*root.glob("data/*"), *root.glob("index/*")]:
                os.utime(stored, (old, old))

    def check_settled(self, tmp: Path) -> dict[str, int]:
        """The policy applied in full: the newest two remain on every target, recorded as
        such; every chunk they need is there and nothing else is on the disk; they verify and
        the newest restores byte-identical."""
        keep = set(sorted(self.made, key=lambda m: (manifest_time(m), m))[-2:])
        for target in self.targets:
            assert _listed(target, self.dataset) == keep, target.name
            alive = set(
                Snapshot.objects.filter(
                    dataset=self.dataset, location=target, forgotten_at__isnull=True
                ).values_list("manifest_id", flat=True)
            )
            assert alive == keep, target.name
        data_key = dataset_data_key(self.dataset)
        if self.disk is not None:
            store, base = store_for_location(self.disk), repository_base(self.disk, self.dataset)
            needed: set[str] = set()
            for manifest_id in keep:
                needed |= engine.load_manifest(store, base, data_key, manifest_id).chunk_ids()
            index = load_pack_index(store, base, DatasetKeys.from_data_key(data_key))
            assert needed <= set(index.blobs)
            # Collected, and nothing more: every pack left holds something a kept snapshot
            # needs (a partly used one may stay, above the repack threshold), none lacks its
            # index.
            for pack_id, blobs in index.packs.items():
                assert needed & {bid for bid, _ in blobs}, pack_id
            packs = {i.key.rsplit("/", 1)[-1] for i in store.list(data_prefix(base))}
            assert packs == set(index.packs)
        verified = _verify_targets(self.dataset, self.targets)
        newest = max(keep, key=lambda m: (manifest_time(m), m))
        snapshot = Snapshot.objects.get(location=self.bucket, manifest_id=newest)
        restored = self.agency.restore(snapshot, tmp)
        assert {p: _sha256(d) for p, d in restored.items()} == self.expected[newest]
        return verified


def test_pruning_killed_at_random_points_never_records_a_snapshot_it_deleted(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    with TripwireProxy(agency.s3_endpoint, delay_seconds=PRUNE_S3_DELAY_SECONDS) as proxy:
        scene = _PruneScene(agency, proxy)
        matrix = Matrix(cluster, "prune")
        task = retention_sweep_task.name
        ids: list[str] = []

        def start() -> None:
            proxy.rate = 1.0
            ids.append(send(cluster, retention_sweep_task))

        scene.snapshots("warm-up")
        matrix.measure(
            start,
            lambda: ids[-1] in matrix.worker.received(task),
            lambda: ids[-1] in succeeded(matrix.worker, task),
        )
        proxy.rate = 0.0
        scene.check_settled(tmp_path / "warm-up")

        for case in range(CASES):
            scene.snapshots(str(case))
            delay = matrix.kill_at_random_point(
                case, start, lambda: ids[-1] in matrix.worker.received(task)
            )
            killed = matrix.worker
            proxy.rate = 0.0
            mid_run = ids[-1] not in succeeded(killed, task)
            at_kill = ", ".join(
                f"{t.name}: {len(_listed(t, scene.dataset))} manifests, "
                f"{_packs(store_for_location(t), repository_base(t, scene.dataset))} packs"
                for t in scene.targets
            )
            # Safe at the instant of the kill: whatever the prune deleted is no longer recorded
            # as a snapshot, and what remains still verifies.
            _assert_every_snapshot_has_its_manifest(scene.dataset)
            _verify_targets(scene.dataset, scene.targets)
            worker = matrix.restart(recover=(lambda: start()) if mid_run else None)
            if mid_run:
                # Redis hands the killed message back; on the filesystem broker the recovery
                # sent the sweep again, as beat does daily.
                cluster.wait_for(
                    lambda worker=worker: succeeded(worker, task), 120, "the prune to rerun"
                )
            proxy.rate = 0.0
            scene.check_settled(tmp_path / f"restored-{case}")
            matrix.record(case, delay, mid_run=mid_run, at_kill=at_kill)

        verified = _verify_targets(scene.dataset, scene.targets)
    _save("prune", matrix.figures(**verified))


def test_a_prune_killed_once_storage_deleted_the_manifests_leaves_no_record_of_them(
    cluster: Cluster, agency: Agency, tmp_path: Path
) -> None:
    """The prune's riskiest instant, hit on purpose: S3 has deleted the forgotten manifests and
    the worker dies before it hears so. No Snapshot may still claim one of them, and the next
    prune must leave records and storage agreeing."""
    with TripwireProxy(agency.s3_endpoint, delay_seconds=0.0) as proxy:
        scene = _PruneScene(agency, proxy, local=False)
        scene.snapshots("only")
        worker = cluster.start_worker("prune-worker")
        tripped = threading.Event()

        def tripwire(method: str, path: str, body: bytes) -> None:
            forgetting = method == "POST" and "delete" in urlsplit(path).query
            if forgetting and b"/snapshots/" in body and not tripped.is_set():
                worker.kill()
                tripped.set()

        proxy.tripwire = tripwire
        send(cluster, retention_sweep_task)
        cluster.wait_for(tripped.is_set, 60, "the prune to delete the forgotten manifests")
        proxy.tripwire = None

        assert len(_listed(scene.bucket, scene.dataset)) == PRUNE_KEEP_LAST  # S3 acted
        _assert_every_snapshot_has_its_manifest(scene.dataset)

        second = cluster.start_worker("second-worker")
        send(cluster, retention_sweep_task)  # tomorrow's sweep (or Redis's redelivery)
        cluster.wait_for(lambda: succeeded(second, retention_sweep_task.name), 60, "the next prune")
        scene.check_settled(tmp_path / "restored")


# --- restore ---

# 7.5 MiB read back over a 4 MiB/s link: two seconds of restore to interrupt.
RESTORE_LINK_BYTES_PER_SECOND = 4 * MIB


def test_restores_killed_at_random_points_finish_byte_identical_and_logged_once(
    cluster: Cluster, agency: Agency, tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    rng = random.Random("restore-data")
    # 512 KiB to 2.5 MiB: sharing the link, the small ones land first, so kills find some
    # files restored whole and others half-written.
    files = {f"shards/shard-{i}.bin": rng.randbytes((i + 1) * MIB // 2) for i in range(5)}
    files["notes.txt"] = b"what the restore brings back\n"
    expected = {path: _sha256(data) for path, data in files.items()}
    dataset = agency.dataset("Crash restore", files=files)
    with slow_link(
        agency.s3_endpoint, download_bytes_per_second=RESTORE_LINK_BYTES_PER_SECOND
    ) as link:
        # One repository reached two ways: restores read it over the slow link, downloads
        # (made while a restore runs) directly, so they never queue behind the restore.
        slow = agency.s3_location("Offsite over a slow link", endpoint=link)
        direct = agency.s3_location("Offsite direct", bucket=slow.bucket, create_bucket=False)
        run = backup_run_create(
            dataset=dataset, trigger=Trigger.MANUAL, targets=[slow, direct], enqueue=False
        )
        backup_run_execute(str(run.public_id))
        snapshot = Snapshot.objects.get(run=run, location=slow)
        direct_snapshot = Snapshot.objects.get(run=run, location=direct)

        # From here on the access events recorded in this process are appended by the workers.
        settings.AGENCYOPS_ACCESS_LOG_INLINE = False
        monkeypatch.setattr(
            access_events_drain_task,
            "delay",
            lambda organization_id: send(cluster, access_events_drain_task, organization_id),
        )
        events_before = AccessEvent.objects.filter(organization=agency.org).count()
        requested: list[str] = []
        downloads = 0
        matrix = Matrix(cluster, "restore")
        # A tenant restores into its own space: a local location dedicated to the client.
        restores = agency.local_location("Restores", client=agency.client)
        restored_root = Path(restores.prefix)

        def request(name: str) -> RestoreRun:
            restore = restore_request(
                actor=agency.actor,
                snapshot=snapshot,
                destination_location=restores,
                destination_path=name,
                enqueue=False,
            )
            requested.append(str(restore.public_id))
            return restore

        def download() -> None:
            nonlocal downloads
            got = snapshot_file_download(
                actor=agency.actor, snapshot=direct_snapshot, path="notes.txt"
            )
            try:
                assert got.path.read_bytes() == files["notes.txt"]
            finally:
                got.cleanup()
            downloads += 1

        def access_log_settled() -> bool:
            if PendingAccessEvent.objects.filter(organization=agency.org).exists():
                return False
            events = AccessEvent.objects.filter(organization=agency.org)
            return (
                events.filter(action="restore").count() >= len(requested)
                and events.filter(action="download").count() >= downloads
            )

        def check_access_log() -> None:
            """Exactly one event per restore requested and per download made, no more; the
            chain verifies."""
            cluster.wait_for(access_log_settled, 60, "the access events to be appended")
            events = AccessEvent.objects.filter(organization=agency.org)
            restores = Counter(e.details["restore"] for e in events.filter(action="restore"))
            assert restores == Counter(requested), cluster.logs()
            assert events.filter(action="download").count() == downloads
            assert events.count() == events_before + len(requested) + downloads
            report = lifecycle_services.access_log_verify(agency.org)
            assert report.ok, report

        warm_up = request("warm-up")
        matrix.measure(
            lambda: send(cluster, restore_run_task, str(warm_up.public_id)),
            lambda: _status(RestoreRun, warm_up.pk) != RunStatus.PENDING,
            lambda: _status(RestoreRun, warm_up.pk) in FINISHED,
        )
        assert _status(RestoreRun, warm_up.pk) == RunStatus.SUCCEEDED, cluster.logs()
        assert digest_files(restored_root / "warm-up") == expected
        check_access_log()

        for case in range(CASES):
            destination = restored_root / f"restore-{case}"
            restore = request(destination.name)
            delay = matrix.kill_at_random_point(
                case,
                lambda restore=restore: send(cluster, restore_run_task, str(restore.public_id)),
                lambda restore=restore: _status(RestoreRun, restore.pk) != RunStatus.PENDING,
                while_running=download,
            )
            restore.refresh_from_db()
            mid_run = restore.status == RunStatus.RUNNING
            at_kill = f"{restore.status}: {restore.bytes_done} of {restore.bytes_total} bytes"
            if restore.status == RunStatus.SUCCEEDED:
                assert digest_files(destination) == expected  # finished means whole
            else:
                _age_heartbeat(RestoreRun, restore.pk, STALE_AFTER)

            def recover() -> None:
                send(cluster, runs_recover_task)
                send(cluster, access_events_drain_all_task)

            matrix.restart(recover=recover)
            done = cluster.wait_for(
                lambda restore=restore: RestoreRun.objects.filter(
                    pk=restore.pk, status__in=FINISHED
                ).first(),
                120,
                f"restore case {case} to finish after the kill",
            )
            logs = cluster.logs()
            assert done.status == RunStatus.SUCCEEDED, f"{done.error}\n{logs}"
            assert done.attempts == (2 if mid_run else 1), logs
            # Byte-identical, and nothing else in the directory (no half-written leftovers).
            assert digest_files(destination) == expected, logs
            check_access_log()
            matrix.record(case, delay, mid_run=mid_run, at_kill=at_kill)

    _save(
        "restore",
        matrix.figures(
            restores_requested=len(requested),
            downloads=downloads,
            access_events_appended=len(requested) + downloads,
        ),
    )


# --- deletion ---

# Every S3 request of the deletion is answered this late (after S3 acted), so listing, each
# batched delete, the key checks and the verification listing can all be interrupted.
DELETION_S3_DELAY_SECONDS = 0.15


class _DeletionScene:
    """Versioned primary and target buckets behind a slow proxy; one dataset to delete per
    case (plus the warm-up's), a neighbour of the same client whose path shares the first one's
    as a string prefix, and another client's dataset in a folder that shares the first client's
    folder as a string prefix."""

    def __init__(self, agency: Agency, proxy: TripwireProxy, cases: int) -> None:
        self.agency = agency
        self.admin2 = UserFactory(username="crash-admin2")
        clients_services.membership_add(actor=agency.actor, user=self.admin2, role="admin")
        self.lead = UserFactory(username="crash-lead")
        clients_services.membership_add(actor=agency.actor, user=self.lead, role="lead")
        clients_services.grant_create(
            actor=agency.actor,
            grantee=self.lead,
            client=agency.client,
            permission="manage",
            reason="lead",
        )
        self.buckets = [versioned_bucket(agency, name) for name in ("primary", "ta", "tb")]
        self.primary = agency.s3_location(
            "Primary bucket",
            endpoint=proxy.url,
            bucket=self.buckets[0],
            create_bucket=False,
            prefix="live",
        )
        self.targets = [
            agency.s3_location(
                f"Target {i}", endpoint=proxy.url, bucket=b, create_bucket=False, prefix="backups"
            )
            for i, b in enumerate(self.buckets[1:])
        ]
        for policy in BackupPolicy.objects.filter(organization=agency.org).exclude(default_for=""):
            policy_update(actor=agency.actor, policy=policy, targets=self.targets)
        self.doomed = [
            agency.dataset(f"Doomed {i}", location=self.primary) for i in range(cases + 1)
        ]
        # datasets/doomed-0-neighbour next to datasets/doomed-0
        neighbour = agency.dataset("Doomed 0 neighbour", location=self.primary)
        other_client = clients_services.client_create(actor=agency.actor, name="Other client")
        other_folder = clients_services.namespace_assign(
            actor=agency.actor, location=self.primary, client=other_client, path="datasets-other"
        )
        stranger = clients_services.dataset_register(
            actor=agency.actor,
            client=other_client,
            name="Doomed 0",
            kind="raw_client_data",
            classification="confidential",
            location=self.primary,
            path=f"{other_folder.path}/{slugify(self.doomed[0].name)}",
        )
        for dataset in [*self.doomed, neighbour, stranger]:
            write_versions(agency, self.primary, dataset)
            backup_now(agency, dataset)
            agency.raw_store(self.primary.bucket).put(
                f"live/{dataset.path}/notes.txt", b"changed " + dataset.name.encode()
            )
            backup_now(agency, dataset)

    def versions(self) -> set[tuple[str, str, str]]:
        """(bucket, key, version id) of every version and delete marker in every bucket."""
        return {
            (bucket, key, version)
            for bucket in self.buckets
            for key, version in all_versions(self.agency.s3_endpoint, bucket)
        }

    def request(self, dataset: Dataset) -> tuple[DeletionRequest, set[tuple[str, str]]]:
        """A lead asks, another admin approves; returns it and the plan's (bucket, prefix)."""
        lead, admin2 = actor_for_user(self.lead), actor_for_user(self.admin2)
        assert lead is not None
        assert admin2 is not None
        request = lifecycle_services.deletion_request_create(
            actor=lead, client=self.agency.client, dataset=dataset, reason="crash matrix"
        )
        bucket_of = {loc.pk: loc.bucket for loc in [self.primary, *self.targets]}
        plan = {(bucket_of[e["location_pk"]], e["prefix"]) for e in request.plan["locations"]}
        assert plan == {
            (self.primary.bucket, f"live/{dataset.path}/"),
            *((t.bucket, repository_base(t, dataset) + "/") for t in self.targets),
        }
        lifecycle_services.deletion_request_approve(actor=admin2, request=request, enqueue=False)
        return request, plan


def _inside(plan: set[tuple[str, str]]) -> Callable[[tuple[str, str, str]], bool]:
    return lambda v: any(v[0] == bucket and v[1].startswith(prefix) for bucket, prefix in plan)


def test_deletions_killed_at_random_points_complete_within_their_plan(
    cluster: Cluster, agency: Agency
) -> None:
    with TripwireProxy(agency.s3_endpoint, delay_seconds=DELETION_S3_DELAY_SECONDS) as proxy:
        scene = _DeletionScene(agency, proxy, CASES)
        matrix = Matrix(cluster, "deletion")

        def state(request: DeletionRequest) -> str:
            return str(
                DeletionRequest.objects.filter(pk=request.pk).values_list("state", flat=True).get()
            )

        def start(request: DeletionRequest) -> None:
            proxy.rate = 1.0
            send(cluster, deletion_request_execute_task, str(request.public_id))

        def check_deleted(
            request: DeletionRequest, plan: set[tuple[str, str]], before: set[Any]
        ) -> DeletionRequest:
            """Verified and certified; every version under the plan gone; nothing else."""
            done: DeletionRequest = DeletionRequest.objects.select_related("certificate").get(
                pk=request.pk
            )
            assert done.state == "verified", (done.error, cluster.logs())
            inside = _inside(plan)
            assert scene.versions() == {v for v in before if not inside(v)}
            assert any(inside(v) for v in before)  # there was something to delete
            raw = lifecycle_services.certificate_file_bytes(done.certificate)
            published = lifecycle_services.signing_key_ensure(done.organization).public_key
            assert lifecycle_services.certificate_verify(raw, public_key=published)[0]
            assert 0 < done.versions_deleted <= done.versions_total
            return done

        before = scene.versions()
        warm_up, plan = scene.request(scene.doomed[0])
        matrix.measure(
            lambda: start(warm_up),
            lambda: state(warm_up) != "approved",
            lambda: state(warm_up) in ("verified", "failed"),
        )
        proxy.rate = 0.0
        check_deleted(warm_up, plan, before)

        for case in range(CASES):
            before = scene.versions()
            request, plan = scene.request(scene.doomed[case + 1])
            delay = matrix.kill_at_random_point(
                case,
                lambda request=request: start(request),
                lambda request=request: state(request) != "approved",
            )
            proxy.rate = 0.0
            request.refresh_from_db()
            mid_run = request.state == "executing"
            at_kill = (
                f"{request.state}: {request.versions_deleted} of {request.versions_total} "
                f"versions, keys destroyed: {request.keys_destroyed_at is not None}"
            )
            # Safe at the instant of the kill: a certificate only once verified, and nothing
            # deleted outside the plan.
            certified = DeletionCertificate.objects.filter(request=request).exists()
            assert certified == (request.state == "verified"), at_kill
            inside = _inside(plan)
            assert {v for v in before if not inside(v)} <= scene.versions(), at_kill
            if mid_run:
                _age_heartbeat(DeletionRequest, request.pk, STALE_AFTER)
            matrix.restart(recover=lambda: send(cluster, deletions_recover_task))
            cluster.wait_for(
                lambda request=request: state(request) in ("verified", "failed"),
                120,
                f"deletion case {case} to finish after the kill",
            )
            done = check_deleted(request, plan, before)
            assert done.attempts == (2 if mid_run else 1), cluster.logs()
            matrix.record(case, delay, mid_run=mid_run, at_kill=at_kill)

    assert lifecycle_services.access_log_verify(agency.org).ok
    _save("deletion", matrix.figures())
