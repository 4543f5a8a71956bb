"""Restore in the pages: the snapshot browser, one file's download, the point-in-time restore
form with its overwrite and path checks, and a deleted dataset's tombstone."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as PageClient
from django.utils import timezone
from rest_framework.test import APIClient

from backups.models import BackupRun, CopyKind, DataCopy, RestoreRun, RunStatus, Snapshot
from backups.services import backup_run_create, backup_run_execute, restore_run_execute
from backups.services import browse as browse_service
from clients import services as clients_services
from clients.models import Dataset, LifecycleState
from lifecycle.models import AccessEvent
from tests.backups.conftest import Agency, read_files, sample_files, write_files
from tests.factories import DeletionRequestFactory, UserFactory


def _page(user: Any) -> PageClient:
    client = PageClient()
    client.force_login(user)
    return client


def _backup(agency: Agency, dataset: Dataset, target: Any) -> Snapshot:
    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    return Snapshot.objects.get(run=done)


@pytest.fixture
def backed_up(agency: Agency) -> dict[str, Any]:
    files = sample_files()
    dataset = agency.dataset("browsable", files=files)
    target = agency.local_location("Backup disk")
    snapshot = _backup(agency, dataset, target)
    member = UserFactory(username="restorer")
    clients_services.membership_add(actor=agency.actor, user=member, role="member")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=member,
        client=agency.client,
        permission="restore",
        reason="restores for the client",
    )
    return {
        "dataset": dataset,
        "target": target,
        "snapshot": snapshot,
        "files": files,
        "member": member,
    }


def _browse(user: Any, snapshot: Snapshot, **query: Any) -> Any:
    return _page(user).get(f"/snapshots/{snapshot.public_id}/", query)


def test_browse_the_top_folder_and_a_subfolder(agency: Agency, backed_up: dict[str, Any]) -> None:
    snapshot, files = backed_up["snapshot"], backed_up["files"]
    top = _browse(backed_up["member"], snapshot)
    assert top.status_code == 200
    html = top.content.decode()
    # Folders first appear as folders (with what lies under them), files as files.
    for folder in ("data/", "models/", "spaces in name/"):
        assert folder in html
    assert "README.md" in html
    assert "empty.txt" in html
    assert "train.csv" not in html  # one level at a time
    assert "5 entries in the top folder" in html
    readme_sha = hashlib.sha256(files["README.md"]).hexdigest()
    assert f'title="{readme_sha}"' in html  # the full value beside the shortened one
    assert f"{readme_sha[:12]}…" in html
    sub = _browse(backed_up["member"], snapshot, path="data")
    assert sub.status_code == 200
    html = sub.content.decode()
    assert "train.csv" in html
    assert "nested/" in html
    assert "README.md" not in html
    assert 'aria-current="page">data<' in html  # breadcrumbs end at the folder shown
    assert "path=data/nested" in html
    size = len(files["data/train.csv"])
    assert f"{size / 1024:.1f}\xa0KB" in html  # human units
    missing = _browse(backed_up["member"], snapshot, path="no/such")
    assert missing.status_code == 404
    unsafe = _browse(backed_up["member"], snapshot, path="../etc")
    assert unsafe.status_code == 400


def test_a_big_folder_is_shown_a_page_at_a_time(
    agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"file-{i:03d}.txt": b"x%d" % i for i in range(7)}
    dataset = agency.dataset("many files", files=files)
    snapshot = _backup(agency, dataset, agency.local_location("Disk for many"))
    monkeypatch.setattr(browse_service, "FOLDER_PAGE_SIZE", 3)
    first = _browse(agency.admin, snapshot).content.decode()
    assert "First 3 of 7" in first
    assert "file-002.txt" in first
    assert "file-003.txt" not in first
    assert "offset=3" in first
    last = _browse(agency.admin, snapshot, offset=6).content.decode()
    assert "file-006.txt" in last
    assert "file-005.txt" not in last
    assert "Entries 7\u20137 of 7" in last  # an en dash, as the page prints
    assert "Next 3" not in last


def test_the_copy_to_read_from_is_chosen(agency: Agency) -> None:
    files = {"a.txt": b"a"}
    dataset = agency.dataset("two copies", files=files)
    one, two = agency.local_location("Copy one"), agency.local_location("Copy two")
    run = backup_run_create(dataset=dataset, trigger="manual", targets=[one, two], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    first = Snapshot.objects.get(run=done, location=one)
    html = _browse(agency.admin, first, target=str(two.public_id)).content.decode()
    assert "read from the copy on Copy two" in html
    assert f'value="{one.public_id}"' in html
    assert f'value="{two.public_id}"' in html
    other = agency.local_location("Holds no copy")
    assert _browse(agency.admin, first, target=str(other.public_id)).status_code == 404


def test_download_streams_the_bytes_and_records_them_as_the_api_does(
    agency: Agency, backed_up: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    snapshot, files = backed_up["snapshot"], backed_up["files"]
    path = "spaces in name/ünïcödé — file.bin"
    url = f"/snapshots/{snapshot.public_id}/download/"
    with django_capture_on_commit_callbacks(execute=True):
        response = _page(backed_up["member"]).get(url, {"path": path})
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == files[path]
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%C3%BCn%C3%AFc%C3%B6d%C3%A9" in response["Content-Disposition"]
    assert response["X-Content-SHA256"] == hashlib.sha256(files[path]).hexdigest()

    api = APIClient()
    api.force_authenticate(backed_up["member"])
    with django_capture_on_commit_callbacks(execute=True):
        through_api = api.get(f"/api/v1/snapshots/{snapshot.public_id}/download/", {"path": path})
    assert b"".join(through_api.streaming_content) == files[path]

    # The same records, whichever way it was downloaded: a tracked copy and an access event.
    copies = DataCopy.objects.filter(dataset=backed_up["dataset"], kind=CopyKind.DOWNLOAD)
    facts = [(c.path, c.files, c.bytes, c.sha256, c.made_by_id, c.snapshot_id) for c in copies]
    assert len(facts) == 2
    assert facts[0] == facts[1]
    assert facts[0][0] == path
    events = AccessEvent.objects.filter(organization=agency.org, action="download")
    assert [e.details for e in events] == [events[0].details] * 2
    assert events[0].details["path"] == path
    assert {e.actor_user_id for e in events} == {backed_up["member"].pk}


def test_download_refuses_without_the_right_and_outside_the_tenant(
    agency: Agency, backed_up: dict[str, Any], new_agency: Any
) -> None:
    snapshot = backed_up["snapshot"]
    url = f"/snapshots/{snapshot.public_id}/download/"
    query = {"path": "README.md"}
    lead = UserFactory(username="lead-without-grant")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    assert _page(lead).get(url, query).status_code == 404
    assert _browse(lead, snapshot).status_code == 404
    other = new_agency("elsewhere")
    assert _page(other.admin).get(url, query).status_code == 404
    assert _browse(other.admin, snapshot).status_code == 404
    auditor = UserFactory(username="auditor")
    clients_services.membership_add(actor=agency.actor, user=auditor, role="auditor")
    assert _page(auditor).get(url, query).status_code == 403  # sees it, may not read it
    assert _browse(auditor, snapshot).status_code == 403
    assert not DataCopy.objects.filter(kind=CopyKind.DOWNLOAD).exists()
    missing = _page(agency.admin).get(url, {"path": "nope.txt"})
    assert missing.status_code == 404


def _restore_form(agency: Agency, **fields: Any) -> dict[str, Any]:
    return {
        "destination_location": str(agency.primary.public_id),
        "destination_path": "datasets/restores/pit",
        "path_prefix": "",
        **fields,
    }


def test_point_in_time_restores_the_older_snapshot(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    dataset, first = backed_up["dataset"], backed_up["snapshot"]
    Snapshot.objects.filter(pk=first.pk).update(taken_at=timezone.now() - timedelta(hours=2))
    changed = {**backed_up["files"], "README.md": b"rewritten"}
    write_files(agency.source_dir(dataset), changed)
    second = _backup(agency, dataset, backed_up["target"])
    assert second.taken_at > timezone.now() - timedelta(minutes=5)
    as_of = timezone.localtime(timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    url = f"/datasets/{dataset.public_id}/restore/"
    response = _page(backed_up["member"]).post(url, _restore_form(agency, as_of=as_of))
    assert response.status_code == 302, response.content.decode()[:2000]
    restore = RestoreRun.objects.get(dataset=dataset)
    assert restore.snapshot_id == first.pk
    done = restore_run_execute(str(restore.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    restored = read_files(Path(agency.primary.prefix) / "datasets" / "restores" / "pit")
    assert restored == backed_up["files"]
    progress = _page(backed_up["member"]).get(f"/restores/{restore.public_id}/progress/").json()
    assert progress["status"] == "succeeded"
    assert progress["percent"] == 100
    # The dataset page shows it with a labelled progress bar.
    page = _page(backed_up["member"]).get(f"/datasets/{dataset.public_id}/").content.decode()
    assert 'aria-label="Progress of the restore requested' in page
    too_early = _page(backed_up["member"]).post(
        url, _restore_form(agency, as_of="2001-01-01T00:00", destination_path="datasets/x")
    )
    assert too_early.status_code == 400
    html = too_early.content.decode()
    assert "No snapshot was taken at or before that time" in html
    assert 'value="2001-01-01T00:00' in html
    assert 'value="datasets/x"' in html


def test_overwrite_needs_the_checkbox_and_keeps_the_input(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    dataset = backed_up["dataset"]
    occupied = Path(agency.primary.prefix) / "datasets" / "restores" / "full"
    write_files(occupied, {"keep.txt": b"mine"})
    url = f"/datasets/{dataset.public_id}/restore/"
    form = _restore_form(agency, destination_path="datasets/restores/full", path_prefix="data")
    refused = _page(backed_up["member"]).post(url, form)
    assert refused.status_code == 409
    html = refused.content.decode()
    assert "already holds files in datasets/restores/full" in html
    assert 'value="datasets/restores/full"' in html
    assert 'value="data"' in html
    assert not RestoreRun.objects.exists()
    # The form puts the question on the page's script (data-confirm) once the box is ticked.
    assert 'name="overwrite"' in html
    assert "restore.js" in html
    agreed = _page(backed_up["member"]).post(url, {**form, "overwrite": "on"})
    assert agreed.status_code == 302
    assert RestoreRun.objects.get().path_prefix == "data"


def test_the_api_refuses_an_occupied_folder_when_asked_not_to_overwrite(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    write_files(Path(agency.primary.prefix) / "datasets" / "restores" / "api", {"x": b"x"})
    api = APIClient()
    api.force_authenticate(backed_up["member"])
    url = f"/api/v1/snapshots/{backed_up['snapshot'].public_id}/restore/"
    body = {"destination_path": "datasets/restores/api", "overwrite": False}
    refused = api.post(url, body, format="json")
    assert refused.status_code == 409
    assert "already holds files" in refused.json()["detail"]
    assert api.post(url, {**body, "overwrite": True}, format="json").status_code == 202


def test_a_path_that_matches_nothing_is_refused_clearly(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    url = f"/datasets/{backed_up['dataset'].public_id}/restore/"
    response = _page(backed_up["member"]).post(
        url, _restore_form(agency, path_prefix="no/such/folder")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "No file of this snapshot lies under &#x27;no/such/folder&#x27;" in html
    assert 'value="no/such/folder"' in html
    assert not RestoreRun.objects.exists()
    # A file's own path matches: the restore is asked for.
    one = _page(backed_up["member"]).post(url, _restore_form(agency, path_prefix="README.md"))
    assert one.status_code == 302


def test_a_deleted_dataset_offers_no_action_and_refuses_them(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    dataset, snapshot = backed_up["dataset"], backed_up["snapshot"]
    verified_at = timezone.now() - timedelta(days=3)
    request = DeletionRequestFactory(
        client=agency.client, dataset=dataset, reason="end of contract", verified_at=verified_at
    )
    Dataset.objects.filter(pk=dataset.pk).update(lifecycle_state=LifecycleState.DELETED)
    admin = _page(agency.admin)
    html = admin.get(f"/datasets/{dataset.public_id}/").content.decode()
    assert f"Deleted on {timezone.localtime(verified_at):%-d %b %Y}" in html
    assert f"/deletions/{request.public_id}/" in html
    for action in (
        "backup-now",
        "restore-form",
        "start-drill",
        "upload-export",
        'name="policy"',
        "/restore/",
        "/drill/",
        "/policy/",
    ):
        assert action not in html, action
    runs = BackupRun.objects.filter(dataset=dataset).count()
    base = f"/datasets/{dataset.public_id}"
    backup = admin.post(f"{base}/backup/", follow=True)
    assert "deleted" in backup.content.decode().lower()
    assert BackupRun.objects.filter(dataset=dataset).count() == runs
    restore = admin.post(f"{base}/restore/", _restore_form(agency))
    assert restore.status_code == 409
    assert "The dataset is deleted" in restore.content.decode()
    policy = admin.post(f"{base}/policy/", {"policy": ""})
    assert policy.status_code == 409
    assert "no longer changes" in policy.content.decode()
    export = admin.post(f"{base}/exports/")
    assert export.status_code == 409
    drill = admin.post(f"{base}/drill/", follow=True)
    assert drill.status_code == 200
    assert "The dataset is deleted" in drill.content.decode()
    assert not RestoreRun.objects.filter(dataset=dataset).exists()
    download = admin.get(f"/snapshots/{snapshot.public_id}/download/", {"path": "README.md"})
    assert download.status_code == 409


def test_a_folder_of_many_files_is_read_without_holding_it(agency: Agency) -> None:
    # Several segments of the streamed file list; the page holds FOLDER_PAGE_SIZE entries.
    files = {f"shots/img-{i:05d}.jpg": b"%d" % i for i in range(1500)}
    files["zz-last.txt"] = b"after the folder"
    dataset = agency.dataset("many shots", files=files)
    snapshot = _backup(agency, dataset, agency.local_location("Disk for shots"))
    listing = browse_service.snapshot_folder_list(
        actor=agency.actor, snapshot=snapshot, folder="shots"
    )
    assert listing.total == 1500
    assert len(listing.entries) == browse_service.FOLDER_PAGE_SIZE
    html = _browse(agency.admin, snapshot, path="shots", offset=1400).content.decode()
    assert "Entries 1401\u20131500 of 1500 in shots" in html
    assert "img-01499.jpg" in html
    assert "img-01399.jpg" not in html
    top = _browse(agency.admin, snapshot).content.decode()
    assert "shots/" in top
    assert "1500 files" in top
    assert "zz-last.txt" in top


def test_a_source_snapshot_shows_what_the_source_said(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    snapshot = backed_up["snapshot"]
    Snapshot.objects.filter(pk=snapshot.pk).update(
        source_meta={
            "engine": "postgresql",
            "server_version": "16.4",
            "tables": {"public.orders": 1200, "public.customers": 37},
            "refs": {"refs/heads/main": "0123456789abcdef0123456789abcdef01234567"},
        }
    )
    html = _browse(backed_up["member"], snapshot).content.decode()
    assert "Server version" in html
    assert "16.4" in html
    assert "public.orders" in html
    assert ">1200<" in html
    assert "refs/heads/main" in html
    assert 'title="0123456789abcdef0123456789abcdef01234567">0123456789ab<' in html


def test_a_deleted_datasets_snapshot_page_reads_nothing(
    agency: Agency, backed_up: dict[str, Any]
) -> None:
    Dataset.objects.filter(pk=backed_up["dataset"].pk).update(
        lifecycle_state=LifecycleState.DELETED
    )
    response = _browse(agency.admin, backed_up["snapshot"])
    assert response.status_code == 200
    html = response.content.decode()
    assert "The dataset is deleted" in html
    assert "/download/" not in html
    assert "restore-form" not in html
