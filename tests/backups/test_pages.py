"""The dataset page's backup side: policy, runs, snapshots, restore form."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import BackupPolicy, BackupRun, DatasetProtection, RestoreRun, Snapshot
from backups.services import policies_create_defaults, protection_create
from tests.conftest import World
from tests.factories import LocationFactory


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def _setup(world: World) -> Any:
    target = LocationFactory(organization=world.org, name="Backup bucket")
    for policy in policies_create_defaults(world.org):
        policy.policy_targets.create(location=target)
    protection_create(world.dataset)
    return target


def test_dataset_page_shows_policy_runs_and_snapshots(world: World) -> None:
    target = _setup(world)
    run = BackupRun.objects.create(
        organization=world.org,
        dataset=world.dataset,
        trigger="manual",
        status="running",
        bytes_done=50,
        bytes_total=200,
    )
    Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=target,
        manifest_id="m1",
        taken_at=timezone.now() - timedelta(hours=3),
        files=4,
        bytes=4096,
    )
    page = _login(world.lead).get(f"/datasets/{world.dataset.public_id}/").content.decode()
    assert "Daily — active client data" in page
    assert "30 daily · 12 monthly" in page
    assert "Backup bucket" in page
    assert f"/backup-runs/{run.public_id}/progress/" in page  # live progress bar
    assert 'value="25"' in page
    assert "Back up now" in page
    assert "Restore a point in time" in page
    progress = _login(world.lead).get(f"/backup-runs/{run.public_id}/progress/").json()
    assert progress["percent"] == 25
    assert (
        _login(world.ungranted_lead).get(f"/backup-runs/{run.public_id}/progress/").status_code
        == 404
    )


def _writes(page: PageClient, url: str) -> list[str]:
    """The SQL writes a GET of `url` makes (the session's own aside)."""
    with CaptureQueriesContext(connection) as queries:
        response = page.get(url)
    assert response.status_code == 200, url
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]


def test_the_dataset_pages_write_nothing(world: World) -> None:
    """GET pages read: the dataset page and its runbook once made the dataset's protection (a
    key, schedules) as a side effect of being looked at. With the protection registration made,
    and with none (a dataset made some other way), no row is written; without one the page
    shows no policy."""
    assert DatasetProtection.objects.filter(dataset=world.dataset).exists()
    page = _login(world.lead)
    urls = (
        f"/datasets/{world.dataset.public_id}/",
        f"/datasets/{world.dataset.public_id}/runbook/",
    )
    for url in urls:
        assert _writes(page, url) == [], url
    DatasetProtection.objects.filter(dataset=world.dataset).delete()
    for url in urls:
        assert _writes(page, url) == [], url
    assert not DatasetProtection.objects.filter(dataset=world.dataset).exists()
    assert "none" in page.get(f"/datasets/{world.dataset.public_id}/").content.decode()


def test_back_up_now_button(world: World) -> None:
    _setup(world)
    response = _login(world.lead).post(f"/datasets/{world.dataset.public_id}/backup/")
    assert response.status_code == 302
    run = BackupRun.objects.get(dataset=world.dataset)
    assert run.trigger == "manual"
    assert run.requested_by == world.lead
    again = _login(world.lead).post(f"/datasets/{world.dataset.public_id}/backup/", follow=True)
    assert "already pending or running" in again.content.decode()
    member = _login(world.member).post(f"/datasets/{world.dataset.public_id}/backup/")
    assert member.status_code == 403
    assert BackupRun.objects.filter(dataset=world.dataset).count() == 1


def test_restore_form_point_in_time(world: World) -> None:
    target = _setup(world)
    old = Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=target,
        manifest_id="old",
        taken_at=timezone.now() - timedelta(days=2),
    )
    Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=target,
        manifest_id="new",
        taken_at=timezone.now() - timedelta(hours=1),
    )
    url = f"/datasets/{world.dataset.public_id}/restore/"
    form = {
        "as_of": (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "destination_location": str(world.location.public_id),
        "destination_path": "datasets/restores/yesterday",  # client A's folder
        "path_prefix": "",
    }
    response = _login(world.member).post(url, form)
    assert response.status_code == 302
    restore = RestoreRun.objects.get()
    assert restore.snapshot == old
    assert restore.destination_path == "datasets/restores/yesterday"
    too_early = _login(world.member).post(url, {**form, "as_of": "2001-01-01T00:00"})
    assert too_early.status_code == 400
    assert "No snapshot was taken" in too_early.content.decode()
    escape = _login(world.member).post(url, {**form, "destination_path": "../x"})
    assert escape.status_code == 400
    assert RestoreRun.objects.count() == 1


def test_policy_form(world: World) -> None:
    _setup(world)
    weekly = BackupPolicy.objects.get(organization=world.org, default_for="weekly")
    url = f"/datasets/{world.dataset.public_id}/policy/"
    response = _login(world.lead).post(url, {"policy": str(weekly.public_id)})
    assert response.status_code == 302
    world.dataset.protection.refresh_from_db()
    assert world.dataset.protection.policy == weekly
    assert world.dataset.protection.policy_pinned
    assert _login(world.member).post(url, {"policy": ""}).status_code == 403


def test_admin_lists_backup_models_without_keys(world: World) -> None:
    from auditlog.models import LogEntry

    _setup(world)
    protection = protection_create(world.dataset)
    wrapped = bytes(protection.wrapped_key or b"")
    assert wrapped
    world.owner.is_staff = world.owner.is_superuser = True
    world.owner.save()
    page = _login(world.owner)
    for model in (
        "backuppolicy",
        "datasetprotection",
        "backupschedule",
        "backuprun",
        "snapshot",
        "restorerun",
    ):
        assert page.get(f"/admin/backups/{model}/").status_code == 200, model
    detail = page.get(f"/admin/backups/datasetprotection/{protection.pk}/change/")
    assert detail.status_code == 200
    assert wrapped.hex() not in detail.content.decode()
    assert "wrapped_key" not in detail.content.decode()
    for entry in LogEntry.objects.all():
        assert wrapped.hex() not in str(entry.changes)
        assert "wrapped_key" not in str(entry.changes)
