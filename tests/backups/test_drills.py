"""Restore drills in process: start (by hand and by the dispatcher), execute as the worker's task
would (`restore_run_execute`), verification of every restored file, timing against the RTO,
recovery point against the RPO, scratch clean-up, alerts, status, review, the API and the
runbook page. tests/backups/integration/test_drill_worker.py runs one on a real worker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    AlertState,
    BackupPolicy,
    BackupRun,
    RestoreRun,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import (
    TransientFailure,
    backup_run_create,
    backup_run_execute,
    repository_base,
    restore_run_execute,
)
from backups.services.drills import (
    drill_review,
    drill_start,
    drill_status_many,
    drills_dispatch,
)
from backups.services.drills import run as drills_module
from backups.services.runs import work as runs_module
from clients import services as clients_services
from clients.models import Dataset, LifecycleState, StorageLocation
from kernel.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.tenancy import Actor, actor_for_user
from lifecycle.models import PendingAccessEvent
from tests.backups.conftest import Agency, sample_files
from tests.conftest import World
from tests.factories import UserFactory
from tests.s3server import free_port


@pytest.fixture(autouse=True)
def scratch(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "scratch"
    settings.AGENCYOPS_SCRATCH_DIR = root
    return root


def _back_up(dataset: Dataset, targets: list[StorageLocation]) -> BackupRun:
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    return done


def _execute(drill: RestoreRun, *, final_attempt: bool = True) -> RestoreRun:
    done = restore_run_execute(str(drill.public_id), final_attempt=final_attempt)
    assert done is not None
    return done


def _open_alert(org: Any, key: str) -> Alert | None:
    return Alert.objects.filter(organization=org, incident_key=key).unresolved().first()


def _lead(agency: Agency, username: str) -> Actor:
    user = UserFactory(username=username)
    clients_services.membership_add(actor=agency.actor, user=user, role="lead")
    actor = actor_for_user(user)
    assert actor is not None
    return actor


# --- carrying a drill out ---


def test_a_drill_restores_verifies_every_file_times_itself_and_removes_its_scratch(
    agency: Agency, scratch: Path
) -> None:
    files = sample_files()
    dataset = agency.dataset("Client uploads", files=files)
    bucket = agency.s3_location("Offsite bucket")
    disk = agency.local_location("Second medium")
    _back_up(dataset, [bucket, disk])

    drill = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)

    assert drill.is_drill
    assert drill.status == RunStatus.PENDING
    assert drill.requested_by == agency.admin
    assert drill.snapshot.dataset_id == dataset.pk
    assert Path(drill.destination_path) == scratch / str(drill.public_id)
    assert (drill.rto, drill.rpo) == (dataset.rto, dataset.rpo)
    assert drill.recovery_point_age is not None
    assert timedelta(0) <= drill.recovery_point_age < timedelta(minutes=5)
    assert drill.rpo_met is True
    # The drill is a read of client data: the access log records it as a drill.
    actions = [e.payload["action"] for e in PendingAccessEvent.objects.all()]
    assert actions.count("restore_drill") == 1

    done = _execute(drill)

    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    assert done.files == len(files)
    assert done.files_verified == len(files)
    assert done.bytes == sum(map(len, files.values()))
    assert done.measured_duration is not None
    assert done.measured_duration > timedelta(0)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.measured_duration == done.finished_at - done.started_at
    assert done.rto_met is True
    assert done.issues == []
    assert not Path(done.destination_path).exists()
    assert list(scratch.iterdir()) == []
    # A second delivery of the task finds it finished and changes nothing.
    again = _execute(drill)
    assert (again.status, again.measured_duration) == (done.status, done.measured_duration)


def test_the_snapshot_is_picked_at_random_among_the_complete_ones_or_must_be_the_dataset_s(
    agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = agency.dataset("Reports", files={"a.txt": b"a"})
    other = agency.dataset("Other", files={"b.txt": b"b"})
    disk = agency.local_location("Second medium")
    for _ in range(3):
        _back_up(dataset, [disk])
    _back_up(other, [disk])
    forgotten = Snapshot.objects.filter(dataset=dataset).last()
    assert forgotten is not None
    Snapshot.objects.filter(pk=forgotten.pk).update(forgotten_at=timezone.now())
    offered: list[list[int]] = []

    class Recording:
        def choice(self, candidates: list[int]) -> int:
            offered.append(sorted(candidates))
            return candidates[-1]

    monkeypatch.setattr(drills_module.secrets, "SystemRandom", Recording)
    drill = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)
    complete = sorted(
        Snapshot.objects.filter(dataset=dataset, forgotten_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    assert offered == [complete]
    assert len(complete) == 2
    assert drill.snapshot_id in complete

    RestoreRun.objects.filter(pk=drill.pk).update(status=RunStatus.FAILED)
    with pytest.raises(ValidationFailed) as wrong:
        drill_start(
            actor=agency.actor,
            dataset=dataset,
            snapshot=Snapshot.objects.get(dataset=other),
            enqueue=False,
        )
    assert "snapshot" in wrong.value.fields
    with pytest.raises(ValidationFailed):
        drill_start(
            actor=agency.actor,
            dataset=dataset,
            snapshot=Snapshot.objects.get(pk=forgotten.pk),
            enqueue=False,
        )
    empty = agency.dataset("Nothing yet", files={"c.txt": b"c"})
    with pytest.raises(Conflict, match="no complete snapshot"):
        drill_start(actor=agency.actor, dataset=empty, enqueue=False)


def test_one_unfinished_drill_per_dataset_and_only_admins_start_them(
    agency: Agency, new_agency: Any
) -> None:
    dataset = agency.dataset("Reports", files={"a.txt": b"a"})
    _back_up(dataset, [agency.local_location("Second medium")])
    drill_start(actor=agency.actor, dataset=dataset, enqueue=False)

    with pytest.raises(Conflict, match="already pending or running"):
        drill_start(actor=None, dataset=dataset, enqueue=False)
    lead = _lead(agency, "lead-of-agency")
    clients_services.grant_create(
        actor=agency.actor, grantee=lead.user, client=agency.client, permission="manage", reason="r"
    )
    with pytest.raises(Forbidden):
        drill_start(actor=actor_for_user(lead.user), dataset=dataset, enqueue=False)
    with pytest.raises(NotFound):
        drill_start(actor=new_agency("elsewhere").actor, dataset=dataset, enqueue=False)
    Dataset.objects.filter(pk=dataset.pk).update(lifecycle_state=LifecycleState.DELETION_PENDING)
    RestoreRun.objects.filter(dataset=dataset).update(status=RunStatus.SUCCEEDED)
    with pytest.raises(Conflict, match="deletion pending"):
        drill_start(actor=agency.actor, dataset=Dataset.objects.get(pk=dataset.pk), enqueue=False)
    assert RestoreRun.objects.filter(dataset=dataset, is_drill=True).count() == 1


def test_a_corrupt_chunk_fails_the_drill_with_its_issue_and_an_alert_and_removes_the_scratch(
    agency: Agency, scratch: Path
) -> None:
    files = sample_files()
    dataset = agency.dataset("Model weights", files=files)
    disk = agency.local_location("Second medium")
    _back_up(dataset, [disk])
    chunks = Path(disk.prefix) / repository_base(disk, dataset) / "data"
    chunk = max((p for p in chunks.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = chunk.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    chunk.write_bytes(bytes(damaged))

    failed = _execute(drill_start(actor=None, dataset=dataset, enqueue=False))

    assert failed.status == RunStatus.FAILED
    assert "corrupt" in failed.error
    assert failed.issues[0].startswith("The restore failed: ")
    assert "corrupt" in failed.issues[0]
    assert failed.measured_duration is not None  # the time until it failed
    assert failed.rto_met is False
    assert failed.files_verified == 0
    assert failed.requested_by is None
    assert list(scratch.iterdir()) == []
    alert = _open_alert(agency.org, f"drill_failed:{dataset.public_id}")
    assert alert is not None
    assert alert.kind == AlertKind.DRILL_FAILED
    assert alert.dataset_id == dataset.pk
    assert "corrupt" in alert.message

    # Repaired, the next drill passes and resolves the alert.
    chunk.write_bytes(original)
    passed = _execute(drill_start(actor=agency.actor, dataset=dataset, enqueue=False))
    assert passed.status == RunStatus.SUCCEEDED, passed.issues
    assert _open_alert(agency.org, f"drill_failed:{dataset.public_id}") is None
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_restored_file_that_differs_from_the_manifest_fails_the_drill(
    agency: Agency, monkeypatch: pytest.MonkeyPatch, scratch: Path
) -> None:
    """The drill re-reads what landed on disk: a file changed after the engine wrote it (a bad
    disk, a tampering process) is caught by the drill's own check."""
    files = sample_files()
    dataset = agency.dataset("Training set", files=files)
    _back_up(dataset, [agency.local_location("Second medium")])
    real_restore = runs_module.engine.restore

    def restore_then_damage(*args: Any, **kwargs: Any) -> Any:
        result = real_restore(*args, **kwargs)
        destination = args[4]
        target = Path(destination.root) / "data" / "train.csv"
        target.write_bytes(target.read_bytes() + b"tampered\n")
        return result

    monkeypatch.setattr(runs_module.engine, "restore", restore_then_damage)
    seen_while_verifying: list[str] = []
    real_verify = drills_module._verify_scratch

    def verify_and_look(drill: RestoreRun, scratch: Path) -> Any:
        seen_while_verifying.append(RestoreRun.objects.get(pk=drill.pk).status)
        return real_verify(drill, scratch)

    monkeypatch.setattr(drills_module, "_verify_scratch", verify_and_look)

    done = _execute(drill_start(actor=agency.actor, dataset=dataset, enqueue=False))

    # Nobody reads "succeeded" before the drill's own checks have run.
    assert seen_while_verifying == [RunStatus.RUNNING]

    assert done.status == RunStatus.FAILED
    assert done.files == len(files)
    assert done.files_verified == len(files) - 1
    assert any(issue.startswith("data/train.csv: ") for issue in done.issues), done.issues
    assert "did not match" in done.error
    assert _open_alert(agency.org, f"drill_failed:{dataset.public_id}") is not None
    assert list(scratch.iterdir()) == []


def test_a_drill_slower_than_the_rto_succeeds_with_rto_missed_and_a_drill_slow_alert(
    agency: Agency,
) -> None:
    dataset = agency.dataset("Exports", files=sample_files())
    _back_up(dataset, [agency.local_location("Second medium")])
    slow = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)
    # An RTO no restore can meet (the dataset's own minimum is a minute).
    RestoreRun.objects.filter(pk=slow.pk).update(rto=timedelta(microseconds=1))

    done = _execute(slow)

    assert done.status == RunStatus.SUCCEEDED
    assert done.rto_met is False
    assert any("longer than the RTO" in issue for issue in done.issues), done.issues
    key = f"drill_slow:{dataset.public_id}"
    alert = _open_alert(agency.org, key)
    assert alert is not None
    assert alert.kind == AlertKind.DRILL_SLOW

    fast = _execute(drill_start(actor=agency.actor, dataset=dataset, enqueue=False))
    assert fast.rto_met is True
    assert _open_alert(agency.org, key) is None


def test_a_snapshot_older_than_the_rpo_is_recorded_as_an_issue(agency: Agency) -> None:
    dataset = agency.dataset("Archive", files={"a.txt": b"a"})
    _back_up(dataset, [agency.local_location("Second medium")])
    snapshot = Snapshot.objects.get(dataset=dataset)
    later = snapshot.taken_at + dataset.rpo + timedelta(hours=2)

    drill = drill_start(actor=agency.actor, dataset=dataset, enqueue=False, now=later)

    assert drill.recovery_point_age == later - snapshot.taken_at
    assert drill.rpo_met is False
    done = _execute(drill)
    assert done.status == RunStatus.SUCCEEDED
    assert done.files_verified == 1
    assert any("beyond the RPO" in issue for issue in done.issues), done.issues


def test_a_transient_storage_error_retries_and_the_final_failure_is_recorded(
    agency: Agency, scratch: Path
) -> None:
    dataset = agency.dataset("Project files", files=sample_files())
    bucket = agency.s3_location("Offsite bucket")
    _back_up(dataset, [bucket])
    clients_services.location_update(
        actor=agency.actor,
        location=bucket,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    drill = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)

    with pytest.raises(TransientFailure):
        _execute(drill, final_attempt=False)
    drill.refresh_from_db()
    assert drill.status == RunStatus.PENDING
    assert drill.measured_duration is None
    assert not scratch.exists() or list(scratch.iterdir()) == []

    final = _execute(drill, final_attempt=True)
    assert final.status == RunStatus.FAILED
    assert final.attempts == 2
    assert "unreachable" in final.issues[0]
    assert final.measured_duration is not None
    assert _open_alert(agency.org, f"drill_failed:{dataset.public_id}") is not None
    assert not scratch.exists() or list(scratch.iterdir()) == []


# --- dispatch and status ---


def _snapshot(dataset: Dataset, location: StorageLocation, taken_at: Any) -> Snapshot:
    return Snapshot.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        location=location,
        manifest_id=f"m-{uuid.uuid4()}",
        taken_at=taken_at,
    )


def _finished_drill(dataset: Dataset, snapshot: Snapshot, status: str, at: Any) -> RestoreRun:
    return RestoreRun.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        snapshot=snapshot,
        destination_path=f"/scratch/{uuid.uuid4()}",
        is_drill=True,
        status=status,
        started_at=at - timedelta(minutes=3),
        finished_at=at,
    )


def test_dispatch_starts_each_due_drill_once_and_raises_drill_overdue(
    agency: Agency, new_agency: Any
) -> None:
    now = timezone.now()
    disk = agency.local_location("Second medium")
    never = agency.dataset("Never drilled")
    _snapshot(never, disk, now - timedelta(days=1))
    recent = agency.dataset("Drilled last week")
    _finished_drill(
        recent, _snapshot(recent, disk, now - timedelta(days=9)), "succeeded", now - timedelta(7)
    )
    stale = agency.dataset("Failed long ago")
    old_snapshot = _snapshot(stale, disk, now - timedelta(days=300))
    _finished_drill(stale, old_snapshot, "succeeded", now - timedelta(days=200))
    _finished_drill(stale, old_snapshot, "failed", now - timedelta(days=100))
    agency.dataset("No snapshot")
    by_hand = agency.dataset("By hand only", kind="business_records")
    _snapshot(by_hand, disk, now - timedelta(days=400))
    BackupPolicy.objects.filter(pk=by_hand.protection.policy_id).update(drill_every=None)
    gone = agency.dataset("Being deleted")
    _snapshot(gone, disk, now - timedelta(days=30))
    Dataset.objects.filter(pk=gone.pk).update(lifecycle_state=LifecycleState.DELETION_PENDING)
    elsewhere = new_agency("elsewhere")
    theirs = elsewhere.dataset("Theirs")
    _snapshot(theirs, elsewhere.local_location("Disk"), now - timedelta(days=2))

    started = drills_dispatch(now)

    assert {d.dataset_id for d in started} == {never.pk, stale.pk, theirs.pk}
    assert all(d.is_drill and d.requested_by is None for d in started)
    assert all(d.status == RunStatus.PENDING for d in started)
    assert drills_dispatch(now) == []
    assert drills_dispatch(now + timedelta(hours=1)) == []
    assert RestoreRun.objects.filter(is_drill=True, status=RunStatus.PENDING).count() == 3
    overdue = Alert.objects.filter(kind=AlertKind.DRILL_OVERDUE).unresolved()
    assert [a.dataset_id for a in overdue] == [stale.pk]
    assert overdue[0].occurrences == 3  # raised once, seen again by each later dispatch


def test_dispatch_decides_in_a_constant_number_of_queries(agency: Agency) -> None:
    now = timezone.now()
    disk = agency.local_location("Second medium")

    def grow(n: int) -> None:
        for _ in range(n):
            dataset = agency.dataset(f"Drilled {uuid.uuid4().hex[:8]}")
            snapshot = _snapshot(dataset, disk, now - timedelta(days=3))
            _finished_drill(dataset, snapshot, "succeeded", now - timedelta(days=2))

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert drills_dispatch(now) == []
        return len(queries)

    grow(2)
    few = count()
    grow(6)
    assert count() == few <= 3


def test_drill_status_many_reads_the_last_drill_period_and_due_date_in_two_queries(
    agency: Agency,
) -> None:
    now = timezone.now()
    disk = agency.local_location("Second medium")
    good = agency.dataset("Good")
    good_drill = _finished_drill(
        good, _snapshot(good, disk, now - timedelta(days=11)), "succeeded", now - timedelta(10)
    )
    failing = agency.dataset("Failing")
    snap = _snapshot(failing, disk, now - timedelta(days=300))
    _finished_drill(failing, snap, "succeeded", now - timedelta(days=120))
    last_failed = _finished_drill(failing, snap, "failed", now - timedelta(days=1))
    fresh = agency.dataset("Fresh")
    first_snapshot = _snapshot(fresh, disk, now - timedelta(hours=5))
    empty = agency.dataset("Empty")
    datasets = [good, failing, fresh, empty]
    policy = good.protection.policy
    assert policy is not None
    period = policy.drill_every
    assert period == timedelta(days=91)

    with CaptureQueriesContext(connection) as queries:
        status = drill_status_many(datasets, now=now)
    assert len(queries) == 2

    assert status[good.pk].last == good_drill
    assert status[good.pk].within_period is True
    assert good_drill.finished_at is not None
    assert status[good.pk].due_at == good_drill.finished_at + period
    assert status[failing.pk].last == last_failed
    assert status[failing.pk].within_period is False
    assert status[fresh.pk].last is None
    assert status[fresh.pk].due_at == first_snapshot.taken_at
    assert (status[empty.pk].last, status[empty.pk].due_at) == (None, None)
    for _ in range(4):
        more = agency.dataset(f"More {uuid.uuid4().hex[:6]}")
        _finished_drill(more, _snapshot(more, disk, now), "succeeded", now)
        datasets.append(more)
    with CaptureQueriesContext(connection) as queries:
        assert len(drill_status_many(datasets, now=now)) == 8
    assert len(queries) == 2


def test_dispatch_sweeps_scratch_directories_that_no_running_drill_owns(
    agency: Agency, scratch: Path
) -> None:
    dataset = agency.dataset("Reports")
    snapshot = _snapshot(dataset, agency.local_location("Disk"), timezone.now())
    finished = _finished_drill(dataset, snapshot, "failed", timezone.now())
    running = drill_start(actor=None, dataset=dataset, enqueue=False)
    for name in (str(finished.public_id), str(running.public_id), "not-a-drill"):
        (scratch / name / "sub").mkdir(parents=True)

    drills_dispatch()

    assert sorted(p.name for p in scratch.iterdir()) == sorted(
        [str(running.public_id), "not-a-drill"]
    )


def test_an_admin_reviews_a_finished_drill(agency: Agency) -> None:
    dataset = agency.dataset("Reports")
    snapshot = _snapshot(dataset, agency.local_location("Disk"), timezone.now())
    pending = drill_start(actor=None, dataset=dataset, enqueue=False)
    with pytest.raises(Conflict, match="not finished"):
        drill_review(actor=agency.actor, drill=pending, note="looks fine")
    done = _finished_drill(dataset, snapshot, "succeeded", timezone.now())
    lead = _lead(agency, "reviewing-lead")
    with pytest.raises(Forbidden):
        drill_review(actor=lead, drill=done, note="mine")

    reviewed = drill_review(actor=agency.actor, drill=done, note="  Timing fine; RTO met.  ")

    assert reviewed.reviewed_by == agency.admin
    assert reviewed.reviewed_at is not None
    assert reviewed.review_note == "Timing fine; RTO met."
    with pytest.raises(ValidationFailed):
        drill_review(actor=agency.actor, drill=done, note="x" * 4001)


# --- API ---


def _world_snapshot(world: World) -> Snapshot:
    return Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=world.location,
        manifest_id=f"m-{uuid.uuid4()}",
        taken_at=timezone.now() - timedelta(hours=2),
        files=3,
        bytes=300,
    )


def test_api_starts_lists_filters_reads_and_reviews_drills(world: World, as_user: Any) -> None:
    snapshot = _world_snapshot(world)
    admin = as_user(world.admin)

    started = admin.post(
        "/api/v1/drills/",
        {"dataset": str(world.dataset.public_id), "snapshot": str(snapshot.public_id)},
    )

    assert started.status_code == 202, started.content
    body = started.json()
    assert body["dataset"] == str(world.dataset.public_id)
    assert body["snapshot"]["id"] == str(snapshot.public_id)
    assert body["snapshot"]["location_name"] == world.location.name
    assert body["status"] == "pending"
    assert body["requested_by"] == "admin"
    assert body["rto"] == "P0DT08H00M00S"
    assert body["rpo_met"] is True
    assert body["destination"].endswith(body["id"])
    again = admin.post("/api/v1/drills/", {"dataset": str(world.dataset.public_id)})
    assert again.status_code == 409
    lead = as_user(world.lead)
    refused = lead.post("/api/v1/drills/", {"dataset": str(world.dataset.public_id)})
    assert refused.status_code == 403
    assert lead.get(f"/api/v1/drills/{body['id']}/").json()["id"] == body["id"]
    listed = lead.get(f"/api/v1/drills/?dataset={world.dataset.public_id}").json()
    assert [d["id"] for d in listed["results"]] == [body["id"]]
    assert admin.get("/api/v1/drills/?result=failed").json()["count"] == 0
    assert admin.get(f"/api/v1/drills/?client={world.client_b.public_id}").json()["count"] == 0
    bad_snapshot = admin.post(
        "/api/v1/drills/",
        {"dataset": str(world.dataset_b.public_id), "snapshot": str(snapshot.public_id)},
    )
    assert bad_snapshot.status_code == 400
    assert "snapshot" in bad_snapshot.json()["fields"]

    early = admin.post(f"/api/v1/drills/{body['id']}/review/", {"note": "too soon"})
    assert early.status_code == 409
    RestoreRun.objects.filter(public_id=body["id"]).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )
    assert lead.post(f"/api/v1/drills/{body['id']}/review/", {"note": "x"}).status_code == 403
    reviewed = admin.post(f"/api/v1/drills/{body['id']}/review/", {"note": "Checked."})
    assert reviewed.status_code == 200, reviewed.content
    assert (reviewed.json()["reviewed_by"], reviewed.json()["review_note"]) == ("admin", "Checked.")
    assert admin.get("/api/v1/drills/?result=succeeded").json()["count"] == 1


@pytest.mark.parametrize(("role", "expected"), [("admin", 3), ("lead", 5)])
def test_drill_list_query_count_is_pinned(
    world: World, as_user: Any, role: str, expected: int
) -> None:
    def add(n: int) -> None:
        for _ in range(n):
            snapshot = _world_snapshot(world)
            drill = _finished_drill(world.dataset, snapshot, "succeeded", timezone.now())
            RestoreRun.objects.filter(pk=drill.pk).update(
                requested_by=world.admin, reviewed_by=world.owner
            )

    def count() -> int:
        api = as_user(getattr(world, role))
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/drills/")
        assert response.status_code == 200
        assert response.json()["count"] >= 2
        return len(queries)

    add(2)
    assert count() == expected
    add(5)
    assert count() == expected


# --- pages ---


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def test_runbook_lists_every_copy_the_key_the_people_and_the_exact_commands(
    agency: Agency,
) -> None:
    owner = UserFactory(username="data-owner", first_name="Dana", last_name="Owner")
    clients_services.membership_add(actor=agency.actor, user=owner, role="lead")
    dataset = agency.dataset("Client uploads", files=sample_files(), owner=owner)
    bucket = agency.s3_location("Offsite bucket")
    disk = agency.local_location("Second medium")
    _back_up(dataset, [bucket, disk])
    latest = {s.location_id: s for s in Snapshot.objects.filter(dataset=dataset)}
    done = _execute(drill_start(actor=agency.actor, dataset=dataset, enqueue=False))
    assert done.status == RunStatus.SUCCEEDED

    response = _login(agency.admin).get(f"/datasets/{dataset.public_id}/runbook/")

    assert response.status_code == 200
    page = response.content.decode()
    bucket_repo = f"s3://{bucket.bucket}/{repository_base(bucket, dataset)}"
    disk_repo = f"file://{disk.prefix}/{repository_base(disk, dataset)}"
    for location, repository in ((bucket, bucket_repo), (disk, disk_repo)):
        assert location.display_uri in page
        assert repository in page
        assert f"{repository}/key" in page
        snapshot = latest[location.pk]
        assert str(snapshot.public_id) in page
        assert f"manage.py restore_snapshot {snapshot.public_id} --to /srv/recovery/" in page
        assert f"manage.py verify_snapshot {snapshot.public_id}" in page
    assert "per-dataset AES-256-GCM key, wrapped by the master key" in page
    assert f"/api/v1/snapshots/?dataset={dataset.public_id}&amp;as_of=" in page
    assert "/api/v1/snapshots/" in page
    assert "/restore/" in page
    assert "&quot;destination_location&quot;: &quot;" + str(dataset.location.public_id) in page
    assert "http://testserver/api/v1/drills/" in page
    assert "Dana Owner" in page
    assert "data-owner@example.test" in page
    assert "agency-admin@example.test" in page  # an admin to call
    assert "agency-owner@example.test" in page
    assert "8 h" in page  # the RTO
    assert "24 h" in page or "1 d" in page  # the RPO
    assert "Succeeded" in page  # the last drill
    assert f"{done.files_verified} files verified" in page
    assert "@media print" in page


def test_runbook_and_drill_button_follow_the_dataset_s_access(agency: Agency) -> None:
    dataset = agency.dataset("Reports", files={"a.txt": b"a"})
    _back_up(dataset, [agency.local_location("Second medium")])
    stranger = _lead(agency, "ungranted-lead")
    granted = _lead(agency, "granted-lead")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=granted.user,
        client=agency.client,
        permission="view",
        reason="r",
    )
    runbook = f"/datasets/{dataset.public_id}/runbook/"

    assert _login(stranger.user).get(runbook).status_code == 404
    assert _login(granted.user).get(runbook).status_code == 200
    lead_page = _login(granted.user).get(f"/datasets/{dataset.public_id}/").content.decode()
    assert runbook in lead_page
    assert "Start drill" not in lead_page
    assert _login(granted.user).post(f"/datasets/{dataset.public_id}/drill/").status_code == 403
    assert _login(stranger.user).post(f"/datasets/{dataset.public_id}/drill/").status_code == 404

    admin = _login(agency.admin)
    assert "Start drill" in admin.get(f"/datasets/{dataset.public_id}/").content.decode()
    response = admin.post(f"/datasets/{dataset.public_id}/drill/", follow=True)
    assert "Restore drill started" in response.content.decode()
    drill = RestoreRun.objects.get(dataset=dataset, is_drill=True)
    assert drill.requested_by == agency.admin
    page = admin.get(f"/datasets/{dataset.public_id}/").content.decode()
    assert 'id="drills"' in page
    assert drill.get_status_display() in page
    again = admin.post(f"/datasets/{dataset.public_id}/drill/", follow=True)
    assert "already pending or running" in again.content.decode()
