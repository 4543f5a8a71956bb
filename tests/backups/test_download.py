"""Downloading one file of a snapshot: verified plaintext, scoped, logged once."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from backups.models import Snapshot
from backups.services import backup_run_create, backup_run_execute
from clients import services as clients_services
from lifecycle.models import AccessEvent
from tests.backups.conftest import Agency, sample_files
from tests.factories import UserFactory


def _backed_up(agency: Agency) -> tuple[Any, Snapshot, dict[str, bytes]]:
    files = sample_files()
    dataset = agency.dataset("downloadable", files=files)
    target = agency.local_location("download target")
    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error
    return dataset, Snapshot.objects.get(run=done), files


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_download_streams_the_verified_file_and_logs_it(
    agency: Agency, django_capture_on_commit_callbacks: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    # This test's own temporary directory: another test process downloading at the same
    # time must not show up among "the copies".
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dataset, snapshot, files = _backed_up(agency)
    member = UserFactory(username="downloader")
    clients_services.membership_add(actor=agency.actor, user=member, role="member")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=member,
        client=agency.client,
        permission="restore",
        reason="needs the weights",
    )
    path = "spaces in name/ünïcödé — file.bin"
    url = f"/api/v1/snapshots/{snapshot.public_id}/download/"
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(member).get(url, {"path": path})
    assert response.status_code == 200
    copies = set(Path(tempfile.gettempdir()).glob("agencyops-download-*"))
    assert copies  # the decrypted copy lives while the response streams
    body = b"".join(response.streaming_content)  # the client closes the response at the end
    assert not any(copy.exists() for copy in copies)  # and the copy goes with it
    assert body == files[path]
    assert response["X-Content-SHA256"] == hashlib.sha256(files[path]).hexdigest()
    assert "attachment" in response["Content-Disposition"]
    events = AccessEvent.objects.filter(organization=agency.org, action="download")
    assert events.count() == 1
    event = events.get()
    assert event.details["path"] == path
    assert event.dataset_id == dataset.pk


def test_download_refuses_missing_unsafe_and_ungranted(agency: Agency) -> None:
    _, snapshot, _ = _backed_up(agency)
    url = f"/api/v1/snapshots/{snapshot.public_id}/download/"
    admin = _api(agency.admin)
    missing = admin.get(url, {"path": "nope.txt"})
    assert missing.status_code == 404
    assert "No file" in missing.json()["detail"]
    assert admin.get(url, {"path": "../etc/passwd"}).status_code == 400
    assert admin.get(url).status_code == 400  # path is required
    viewer = UserFactory(username="viewer")
    clients_services.membership_add(actor=agency.actor, user=viewer, role="lead")
    clients_services.grant_create(
        actor=agency.actor, grantee=viewer, client=agency.client, permission="view", reason="r"
    )
    assert _api(viewer).get(url, {"path": "README.md"}).status_code == 403
    outsider = UserFactory(username="outsider")
    clients_services.membership_add(actor=agency.actor, user=outsider, role="lead")
    assert _api(outsider).get(url, {"path": "README.md"}).status_code == 404
    assert not AccessEvent.objects.filter(action="download").exists()
