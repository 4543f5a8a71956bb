"""Backup services in process: default policies, runs to S3 (moto over HTTP) and local targets,
restores, failures, the dispatcher and its schedule arithmetic.

Runs are created with `enqueue=False` and carried out by calling `backup_run_execute` directly,
as the worker's task would; tests/backups/integration/ does the same through real workers.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.utils import timezone as django_timezone

from backups.models import (
    ACTIVE_RUN_STATES,
    BackupPolicy,
    BackupRun,
    BackupSchedule,
    DatasetProtection,
    DefaultFor,
    Frequency,
    RunStatus,
    RunTarget,
    Snapshot,
    Trigger,
)
from backups.services import (
    DEFAULT_POLICIES,
    TransientFailure,
    backup_run_create,
    backup_run_execute,
    backups_dispatch,
    dataset_policy_set,
    due_schedules,
    location_key,
    next_due,
    policy_update,
    restore_request,
    restore_run_execute,
    snapshot_as_of,
)
from clients.models import Dataset, StorageLocation
from clients.services import dataset_update, location_update
from kernel.exceptions import Conflict
from tests.backups.conftest import (
    MARKER,
    TEST_CREDENTIALS,
    Agency,
    read_files,
    sample_files,
    write_files,
)
from tests.s3server import TEST_REGION, free_port

# A Wednesday, so daily, weekly and monthly slots all fall somewhere else.
NOW = datetime(2031, 1, 8, 10, 0, tzinfo=UTC)


def _back_up(dataset: Dataset, targets: list[StorageLocation]) -> BackupRun:
    """Create a run and carry it out here, as the worker's task would (its last attempt)."""
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


# --- default policies ---


@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        ("code_repository", "active", DefaultFor.CONTINUOUS),
        ("business_records", "active", DefaultFor.RECORDS),
        ("raw_client_data", "active", DefaultFor.DAILY),
        ("model_artifact", "active", DefaultFor.DAILY),
        ("model_artifact", "completed", DefaultFor.WEEKLY),
        ("raw_client_data", "archived", DefaultFor.MONTHLY),
        ("code_repository", "archived", DefaultFor.MONTHLY),
    ],
)
def test_registering_a_dataset_protects_it_with_the_default_policy_for_its_kind_and_state(
    agency: Agency, kind: str, state: str, expected: str
) -> None:
    dataset = agency.dataset("Incoming", kind=kind, lifecycle_state=state)

    protection = DatasetProtection.objects.select_related("policy").get(dataset=dataset)
    assert protection.policy is not None
    assert protection.policy.default_for == expected
    assert protection.policy.frequency == DEFAULT_POLICIES[expected]["frequency"]
    # Records keep their monthly snapshots forever; code keeps twelve.
    assert protection.policy.keep_monthly == DEFAULT_POLICIES[expected].get("keep_monthly", 0)
    assert protection.organization_id == agency.org.pk
    assert not protection.policy_pinned
    assert protection.wrapped_key  # a data key of its own, wrapped by the master key


def _schedule_targets(dataset: Dataset) -> set[int]:
    return set(BackupSchedule.objects.filter(dataset=dataset).values_list("location_id", flat=True))


def test_a_lifecycle_change_moves_an_unpinned_dataset_and_keeps_a_pinned_one(
    agency: Agency,
) -> None:
    daily_target = agency.local_location("Daily target")
    weekly_target = agency.local_location("Weekly target")
    archive_target = agency.local_location("Archive target")
    for key, target in (
        (DefaultFor.DAILY, daily_target),
        (DefaultFor.WEEKLY, weekly_target),
        (DefaultFor.MONTHLY, archive_target),
    ):
        policy_update(actor=agency.actor, policy=agency.policy(key), targets=[target])
    follows = agency.dataset("Follows its state")
    model = agency.dataset("Model", kind="model_artifact")
    pinned = agency.dataset("Pinned by a person")
    dataset_policy_set(actor=agency.actor, dataset=pinned, policy=agency.policy(DefaultFor.DAILY))

    dataset_update(actor=agency.actor, dataset=follows, lifecycle_state="archived")
    dataset_update(actor=agency.actor, dataset=model, lifecycle_state="completed")
    dataset_update(actor=agency.actor, dataset=pinned, lifecycle_state="archived")

    def policy_of(dataset: Dataset) -> tuple[str, bool]:
        protection = DatasetProtection.objects.select_related("policy").get(dataset=dataset)
        assert protection.policy is not None
        return protection.policy.default_for, protection.policy_pinned

    assert policy_of(follows) == (DefaultFor.MONTHLY, False)
    assert _schedule_targets(follows) == {archive_target.pk}
    assert policy_of(model) == (DefaultFor.WEEKLY, False)
    assert _schedule_targets(model) == {weekly_target.pk}
    assert policy_of(pinned) == (DefaultFor.DAILY, True)
    assert _schedule_targets(pinned) == {daily_target.pk}

    # Unpinning hands the dataset back to the default for its current state.
    dataset_policy_set(actor=agency.actor, dataset=pinned, policy=None)
    assert policy_of(pinned) == (DefaultFor.MONTHLY, False)
    assert _schedule_targets(pinned) == {archive_target.pk}


# --- backup and restore ---


def test_backup_to_s3_and_local_targets_restores_byte_identical_at_any_point_in_time(
    agency: Agency, tmp_path: Path
) -> None:
    files = sample_files()
    dataset = agency.dataset("Client uploads", files=files)
    bucket = agency.s3_location("Offsite bucket")
    disk = agency.local_location("Second medium")

    first = _back_up(dataset, [bucket, disk])

    assert first.status == RunStatus.SUCCEEDED, first.error
    assert (first.files_seen, first.bytes_seen) == (len(files), sum(map(len, files.values())))
    first_snapshots = list(Snapshot.objects.filter(dataset=dataset).select_related("location"))
    assert sorted((s.location_id, s.run_id) for s in first_snapshots) == sorted(
        [(bucket.pk, first.pk), (disk.pk, first.pk)]
    )
    assert len({s.manifest_id for s in first_snapshots}) == 1
    assert all(s.files == len(files) for s in first_snapshots)
    for snapshot in first_snapshots:
        restored = agency.restore(snapshot, tmp_path / f"first-{snapshot.location.kind}")
        assert restored == files

    # Change one file, add another, back up again.
    taken_first = first_snapshots[0].taken_at
    changed = dict(files)
    changed["data/train.csv"] = b"id,label\n1,0\n"
    changed["added later.txt"] = b"new in the second snapshot"
    write_files(
        agency.source_dir(dataset), {k: changed[k] for k in ("data/train.csv", "added later.txt")}
    )

    second = _back_up(dataset, [bucket, disk])

    assert second.status == RunStatus.SUCCEEDED, second.error
    # Incremental: only the changed and the new file were read again.
    assert second.files_reused == len(files) - 1
    assert Snapshot.objects.filter(dataset=dataset).count() == 4
    taken_second = Snapshot.objects.filter(run=second).values_list("taken_at", flat=True)[0]
    assert taken_second > taken_first

    older = snapshot_as_of(dataset, taken_second - timedelta(microseconds=1))
    assert older is not None
    assert older.run_id == first.pk
    assert agency.restore(older, tmp_path / "as-of-first") == files
    newer = snapshot_as_of(dataset, django_timezone.now())
    assert newer is not None
    assert newer.run_id == second.pk
    assert agency.restore(newer, tmp_path / "as-of-now") == changed
    assert snapshot_as_of(dataset, taken_first - timedelta(microseconds=1)) is None


def test_no_object_on_a_target_holds_plaintext(agency: Agency) -> None:
    files = sample_files()
    dataset = agency.dataset("Contracts", files=files)
    bucket = agency.s3_location("Offsite bucket")
    disk = agency.local_location("Second medium")
    assert sum(MARKER in data for data in files.values()) == 3  # the search below has prey

    run = _back_up(dataset, [bucket, disk])

    assert run.status == RunStatus.SUCCEEDED, run.error
    raw = agency.raw_store(bucket.bucket)
    on_s3 = {info.key: raw.get(info.key) for info in raw.list("")}
    on_disk = read_files(Path(disk.prefix))
    for objects in (on_s3, on_disk):
        keys = sorted(objects)
        assert any("/data/" in key for key in keys), keys
        assert any("/index/" in key for key in keys), keys
        assert any("/snapshots/" in key for key in keys), keys
        assert [key for key, data in objects.items() if MARKER in data] == []
        # File names live only inside the encrypted manifest.
        assert [key for key in keys if "weights" in key or "train" in key] == []


def test_one_active_run_per_pair_and_a_second_execute_is_a_no_op(agency: Agency) -> None:
    dataset = agency.dataset("Pipeline input", files=sample_files())
    target = agency.local_location("Target")
    other = agency.local_location("Other target")

    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False
    )
    with pytest.raises(Conflict) as refused:
        backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False)
    assert refused.value.status == 409
    with pytest.raises(Conflict):
        backup_run_create(
            dataset=dataset, trigger=Trigger.API, targets=[other, target], enqueue=False
        )
    assert BackupRun.objects.filter(dataset=dataset).count() == 1  # refusals leave no rows
    # Another target is another pair.
    elsewhere = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[other], enqueue=False
    )

    done = backup_run_execute(str(run.public_id))
    again = backup_run_execute(str(run.public_id))

    assert done is not None
    assert again is not None
    assert done.status == again.status == RunStatus.SUCCEEDED
    assert again.attempts == 1
    assert again.finished_at == done.finished_at
    assert Snapshot.objects.filter(dataset=dataset).count() == 1
    # The pair is free again once its run is over; the other pair is still taken.
    backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False)
    with pytest.raises(Conflict):
        backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=[other], enqueue=False)
    assert BackupRun.objects.get(pk=elsewhere.pk).status == RunStatus.PENDING


# --- failures ---

WRONG_SECRET = "wrong-secret-3f9a7c1e5d"


def _delete_bucket(agency: Agency, bucket: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=agency.s3_endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_CREDENTIALS["access_key_id"],
        aws_secret_access_key=TEST_CREDENTIALS["secret_access_key"],
    )
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    ("failure", "fragments"),
    [
        ("wrong_credentials", ["head of", "S3 bucket 'locked-bucket'", "403"]),
        ("unreachable_endpoint", ["endpoint unreachable", "S3 bucket 'gone-bucket' at http://"]),
        ("missing_source_directory", ["no objects under 'datasets/project-files'"]),
        ("missing_source_root", ["local store directory does not exist", "primary-storage"]),
        ("missing_source_bucket", ["NoSuchBucket", "list of 'primary/datasets/project-files/'"]),
    ],
)
def test_a_failed_run_says_why_records_no_snapshot_and_loses_nothing(
    agency: Agency,
    s3_endpoint_with_auth: str,
    tmp_path: Path,
    failure: str,
    fragments: list[str],
) -> None:
    files = sample_files()
    if failure == "missing_source_bucket":
        source = agency.s3_location("Primary bucket", prefix="primary")
        dataset = agency.dataset("Project files", location=source)
        raw = agency.raw_store(source.bucket)
        for relative, data in files.items():
            raw.put(location_key(source, dataset.path, relative), data)
    else:
        dataset = agency.dataset("Project files", files=files)
    good = agency.local_location("Good target")
    first = _back_up(dataset, [good])
    assert first.status == RunStatus.SUCCEEDED, first.error
    earlier = Snapshot.objects.get(dataset=dataset)

    targets = [good]
    if failure == "wrong_credentials":
        targets.append(
            agency.s3_location(
                "Locked bucket",
                endpoint=s3_endpoint_with_auth,
                bucket="locked-bucket",
                create_bucket=False,
                credentials={
                    "access_key_id": "AKIAWRONGKEY00000000",
                    "secret_access_key": WRONG_SECRET,
                },
            )
        )
    elif failure == "unreachable_endpoint":
        targets.append(
            agency.s3_location(
                "Gone",
                endpoint=f"http://127.0.0.1:{free_port()}",
                bucket="gone-bucket",
                create_bucket=False,
            )
        )
    elif failure == "missing_source_directory":
        shutil.rmtree(agency.source_dir(dataset))
    elif failure == "missing_source_root":
        shutil.rmtree(agency.primary.prefix)
    else:
        _delete_bucket(agency, dataset.location.bucket)

    failed = _back_up(dataset, targets)

    assert failed.status == RunStatus.FAILED
    assert failed.finished_at is not None
    for fragment in fragments:
        assert fragment in failed.error
    assert WRONG_SECRET not in failed.error
    assert list(Snapshot.objects.filter(dataset=dataset)) == [earlier]
    assert not RunTarget.objects.filter(run=failed, active=True).exists()  # pairs are free
    assert agency.restore(earlier, tmp_path / "restored") == files


def test_an_unreachable_target_is_retried_by_the_task_until_its_final_attempt(
    agency: Agency,
) -> None:
    dataset = agency.dataset("Project files", files=sample_files())
    gone = agency.s3_location(
        "Gone", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=[gone], enqueue=False)

    with pytest.raises(TransientFailure, match="unreachable"):
        backup_run_execute(str(run.public_id), final_attempt=False)

    run.refresh_from_db()
    assert run.status in ACTIVE_RUN_STATES
    assert run.error.startswith("retrying:")
    # The run keeps its pair while it waits for its retry.
    assert RunTarget.objects.filter(run=run, active=True).count() == 1

    # The task's retry (here at once) takes the run again: it is not "held by a live worker".
    final = backup_run_execute(str(run.public_id), final_attempt=True)

    assert final is not None
    assert final.status == RunStatus.FAILED
    assert final.attempts == 2
    assert "endpoint unreachable" in final.error
    assert not Snapshot.objects.filter(dataset=dataset).exists()
    assert not RunTarget.objects.filter(run=run, active=True).exists()


def test_a_restore_from_an_unreachable_target_is_retried_until_its_final_attempt(
    agency: Agency, tmp_path: Path
) -> None:
    dataset = agency.dataset("Project files", files=sample_files())
    bucket = agency.s3_location("Offsite bucket")
    assert _back_up(dataset, [bucket]).status == RunStatus.SUCCEEDED
    snapshot = Snapshot.objects.get(dataset=dataset)
    location_update(
        actor=agency.actor,
        location=bucket,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    restore = restore_request(
        actor=None,  # the operator's restore_snapshot --to DIR
        snapshot=Snapshot.objects.select_related("location").get(pk=snapshot.pk),
        destination_path=str(tmp_path / "restored"),
        enqueue=False,
    )

    with pytest.raises(TransientFailure, match="unreachable"):
        restore_run_execute(str(restore.public_id), final_attempt=False)
    restore.refresh_from_db()
    assert restore.status in ACTIVE_RUN_STATES
    final = restore_run_execute(str(restore.public_id), final_attempt=True)

    assert final is not None
    assert final.status == RunStatus.FAILED
    assert final.attempts == 2
    assert "endpoint unreachable" in final.error


# --- dispatcher ---


def _pairs(runs: list[BackupRun]) -> set[tuple[int, tuple[int, ...]]]:
    return {
        (run.dataset_id, tuple(run.run_targets.values_list("location_id", flat=True)))
        for run in runs
    }


def test_dispatcher_starts_one_run_per_due_pair_once_and_advances_its_schedule(
    agency: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    daily = agency.policy(DefaultFor.DAILY)
    first, second = agency.local_location("First target"), agency.local_location("Second target")
    policy_update(actor=agency.actor, policy=daily, targets=[first, second])
    one, two = agency.dataset("One"), agency.dataset("Two")
    due = {
        (one.pk, first.pk): NOW - timedelta(minutes=1),
        (one.pk, second.pk): NOW - timedelta(hours=1),
        (two.pk, first.pk): NOW + timedelta(minutes=1),
        (two.pk, second.pk): NOW,
    }
    for (dataset_id, location_id), when in due.items():
        updated = BackupSchedule.objects.filter(
            dataset_id=dataset_id, location_id=location_id
        ).update(next_due_at=when)
        assert updated == 1

    def due_now() -> dict[tuple[int, int], datetime]:
        return {(s.dataset_id, s.location_id): s.next_due_at for s in BackupSchedule.objects.all()}

    with django_capture_on_commit_callbacks() as enqueued:
        started = backups_dispatch(NOW)

    assert _pairs(started) == {
        (one.pk, (first.pk,)),
        (one.pk, (second.pk,)),
        (two.pk, (second.pk,)),
    }
    assert {(run.trigger, run.status) for run in started} == {(Trigger.SCHEDULE, RunStatus.PENDING)}
    assert len(enqueued) == 3  # one task each, sent once the transaction commits
    tomorrow = datetime(2031, 1, 9, 2, 0, tzinfo=UTC)
    assert next_due(daily, NOW) == tomorrow
    assert due_now() == {
        (one.pk, first.pk): tomorrow,
        (one.pk, second.pk): tomorrow,
        (two.pk, first.pk): NOW + timedelta(minutes=1),
        (two.pk, second.pk): tomorrow,
    }

    # The same tick again (a retried or a second beat) starts nothing.
    assert backups_dispatch(NOW) == []
    assert BackupRun.objects.count() == 3

    # Tomorrow every pair is due; only (one, first)'s run has finished by then.
    finished = next(r for r in started if _pairs([r]) == {(one.pk, (first.pk,))})
    BackupRun.objects.filter(pk=finished.pk).update(status=RunStatus.SUCCEEDED)
    RunTarget.objects.filter(run=finished).update(active=False)
    later = tomorrow + timedelta(seconds=30)

    started_later = backups_dispatch(later)

    assert _pairs(started_later) == {(one.pk, (first.pk,)), (two.pk, (first.pk,))}
    day_after = datetime(2031, 1, 10, 2, 0, tzinfo=UTC)
    assert due_now() == {
        (one.pk, first.pk): day_after,
        # Still busy: left due, so the next tick tries again.
        (one.pk, second.pk): tomorrow,
        (two.pk, first.pk): day_after,
        (two.pk, second.pk): tomorrow,
    }
    assert BackupRun.objects.count() == 5  # refused pairs leave no run behind
    assert (
        BackupRun.objects.filter(status=RunStatus.PENDING).count() == 4
    )  # two still waiting, two new


def _policy(frequency: str, at: time = time(2, 0)) -> BackupPolicy:
    return BackupPolicy(frequency=frequency, time_of_day=at)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frequency", "after", "expected"),
    [
        (Frequency.CONTINUOUS, _utc(2031, 1, 8, 10, 7, 30), _utc(2031, 1, 8, 10, 22, 30)),
        (Frequency.HOURLY, _utc(2031, 1, 8, 10, 7), _utc(2031, 1, 8, 11, 0)),
        (Frequency.HOURLY, _utc(2031, 1, 8, 10, 0), _utc(2031, 1, 8, 11, 0)),
        (Frequency.HOURLY, _utc(2031, 12, 31, 23, 30), _utc(2032, 1, 1, 0, 0)),
        (Frequency.DAILY, _utc(2031, 1, 8, 1, 59), _utc(2031, 1, 8, 2, 0)),
        (Frequency.DAILY, _utc(2031, 1, 8, 2, 0), _utc(2031, 1, 9, 2, 0)),
        (Frequency.DAILY, _utc(2031, 1, 8, 10, 0), _utc(2031, 1, 9, 2, 0)),
        # Weekly slots are Mondays; 2031-01-06 and 2031-01-13 are Mondays.
        (Frequency.WEEKLY, _utc(2031, 1, 8, 10, 0), _utc(2031, 1, 13, 2, 0)),
        (Frequency.WEEKLY, _utc(2031, 1, 6, 1, 0), _utc(2031, 1, 6, 2, 0)),
        (Frequency.WEEKLY, _utc(2031, 1, 6, 2, 0), _utc(2031, 1, 13, 2, 0)),
        (Frequency.MONTHLY, _utc(2031, 1, 15, 9, 0), _utc(2031, 2, 1, 2, 0)),
        (Frequency.MONTHLY, _utc(2031, 1, 1, 1, 0), _utc(2031, 1, 1, 2, 0)),
        (Frequency.MONTHLY, _utc(2031, 12, 20, 0, 0), _utc(2032, 1, 1, 2, 0)),
        (Frequency.MONTHLY, _utc(2032, 2, 10, 0, 0), _utc(2032, 3, 1, 2, 0)),  # leap February
    ],
)
def test_next_due_is_the_first_slot_strictly_after(
    frequency: str, after: datetime, expected: datetime
) -> None:
    assert next_due(_policy(frequency), after) == expected


def test_next_due_works_in_utc_whatever_the_caller_s_time_zone() -> None:
    paris_evening = datetime(2031, 1, 8, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 23:30 UTC

    slot = next_due(_policy(Frequency.DAILY), paris_evening)

    assert slot == _utc(2031, 1, 8, 2, 0)
    assert slot.utcoffset() == timedelta(0)
    assert next_due(_policy(Frequency.DAILY, time(23, 45)), paris_evening) == _utc(
        2031, 1, 7, 23, 45
    )


def test_due_schedules_lists_every_due_pair_of_every_organization_in_one_query(
    new_agency: Any, django_assert_num_queries: Any
) -> None:
    a, b = new_agency("a"), new_agency("b")
    for agency in (a, b):
        target = agency.local_location("Target")
        for key in (DefaultFor.DAILY, DefaultFor.MONTHLY):
            policy_update(actor=agency.actor, policy=agency.policy(key), targets=[target])
    due = {
        a.dataset("A first"): NOW - timedelta(hours=3),
        b.dataset("B first"): NOW - timedelta(hours=2),
        a.dataset("A archived", lifecycle_state="archived"): NOW - timedelta(hours=1),
        b.dataset("B exactly now"): NOW,
        a.dataset("A not yet"): NOW + timedelta(seconds=1),
        a.dataset("A being deleted"): NOW - timedelta(hours=5),
    }
    for dataset, when in due.items():
        BackupSchedule.objects.filter(dataset=dataset).update(next_due_at=when)
    Dataset.objects.filter(name="A being deleted").update(lifecycle_state="deletion_pending")

    with django_assert_num_queries(1):
        listed = [
            (
                s.dataset.organization.slug,
                s.dataset.name,
                s.location.name,
                s.dataset.protection.policy.frequency,
            )
            for s in due_schedules(NOW)
        ]

    assert listed == [
        ("a", "A first", "Target", Frequency.DAILY),
        ("b", "B first", "Target", Frequency.DAILY),
        ("a", "A archived", "Target", Frequency.MONTHLY),
        ("b", "B exactly now", "Target", Frequency.DAILY),
    ]
