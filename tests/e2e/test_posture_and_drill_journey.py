"""A non-staff admin audits a bucket's posture, fixes it and runs a restore drill, in a real
browser: the S3 bucket on the moto server has versioning off; the posture page finds it, its
fix is applied from the page and a second audit no longer lists it (the bucket really has
versioning on); then a drill started from the dataset page is carried out by a real Celery
worker, and the page shows it succeeded with its time against the RTO and the files verified.
Screenshots: posture-before-fix.png, posture-after-fix.png, drill-result.png."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.template.defaultfilters import floatformat
from playwright.sync_api import expect

from backups.models import (
    FixAction,
    PostureAudit,
    PostureCheck,
    PostureFix,
    RestoreRun,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import backup_run_create, backup_run_execute
from backups.tasks import restore_run_task
from tests.backups.conftest import make_agency, sample_files
from tests.backups.integration.support import Cluster
from tests.e2e.conftest import WAIT_MS, log_in
from tests.lifecycle.deletion_support import s3_client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def _versioning_row(page: Any) -> Any:
    """The findings row of the versioning check (its second cell names the check)."""
    return page.locator("#findings tbody tr").filter(
        has=page.locator("td:nth-child(2)", has_text=re.compile(r"^\s*Versioning\s*$"))
    )


def test_an_admin_fixes_a_bucket_posture_and_runs_a_restore_drill(
    live_server: Any,
    cluster: Cluster,
    route_to_cluster: Any,
    page: Any,
    artifacts: Path,
    s3_endpoint: str,
    settings: Any,
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "scratch"
    settings.AGENCYOPS_SCRATCH_DIR = scratch  # the drill record carries its scratch path
    agency = make_agency(s3_endpoint, slug="posture")
    assert not agency.admin.is_staff  # an admin of the organization, not of the installation
    bucket = agency.s3_location("Offsite bucket")  # a plain bucket: versioning never enabled
    s3 = s3_client(s3_endpoint)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket.bucket)
    files = sample_files()
    dataset = agency.dataset("Survey archive", files=files, rto=timedelta(hours=4))
    base = live_server.url
    log_in(page, base, agency.admin.username)

    # 1. Posture: audit, see the versioning finding, fix it from the page, audit again.
    page.goto(f"{base}/locations/{bucket.public_id}/posture/")
    expect(page.locator("#findings")).to_contain_text("Not audited yet.")
    page.get_by_role("button", name="Audit now").click()
    expect(page.locator(".messages")).to_contain_text("Audit done.")
    finding = _versioning_row(page)
    expect(finding).to_have_count(1)
    fix_button = finding.get_by_role("button", name="Enable versioning")
    expect(fix_button).to_have_attribute("data-fix", FixAction.ENABLE_VERSIONING)
    page.screenshot(path=str(artifacts / "posture-before-fix.png"), full_page=True)
    first = PostureAudit.objects.get(location=bucket)
    assert first.findings.filter(check_name=PostureCheck.VERSIONING).exists()

    fix_form = finding.locator("form")
    question = fix_form.get_attribute("data-confirm")
    assert question is not None  # a fix changes the bucket: the page asks first
    assert "changes the bucket's settings" in question
    fix_button.click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text(question)
    label = fix_form.get_attribute("data-confirm-label") or "Confirm"
    dialog.get_by_role("button", name=label).click()
    expect(page.locator(".messages")).to_contain_text(
        "Enable versioning: done, and the bucket was audited again."
    )
    applied = page.locator("#fixes tbody tr").first
    expect(applied).to_contain_text("Enable versioning")
    expect(applied).to_contain_text(agency.admin.username)
    expect(applied.locator(".badge")).to_have_text("applied")
    expect(_versioning_row(page)).to_have_count(0)
    page.get_by_role("button", name="Audit now").click()
    expect(page.locator(".messages")).to_contain_text("Audit done.")
    expect(_versioning_row(page)).to_have_count(0)
    expect(page.locator("#findings [data-fix='enable_versioning']")).to_have_count(0)
    # First audit, the one after the fix, and the second by hand; the latest is on top.
    history = page.locator("#posture-history tbody tr")
    expect(history).to_have_count(3)
    expect(history.first).to_contain_text("latest")
    expect(history.nth(1)).to_contain_text("After a fix")
    page.screenshot(path=str(artifacts / "posture-after-fix.png"), full_page=True)

    assert s3.get_bucket_versioning(Bucket=bucket.bucket)["Status"] == "Enabled"
    fix = PostureFix.objects.get(location=bucket)
    assert fix.action == FixAction.ENABLE_VERSIONING
    assert fix.succeeded, fix.error
    assert fix.requested_by_id == agency.admin.pk
    latest = PostureAudit.objects.filter(location=bucket).order_by("-audited_at", "-pk").first()
    assert latest is not None
    assert latest.reachable
    assert not latest.findings.filter(check_name=PostureCheck.VERSIONING).exists()

    # 2. A backup to that bucket, then a drill started from the dataset page, run by the worker.
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[bucket], enqueue=False
    )
    backed_up = backup_run_execute(str(run.public_id), final_attempt=True)
    assert backed_up is not None
    assert backed_up.status == RunStatus.SUCCEEDED, backed_up.error
    snapshot = Snapshot.objects.get(dataset=dataset, location=bucket)
    cluster.start_worker("worker")
    route_to_cluster(cluster, restore_run_task)

    page.goto(f"{base}/datasets/{dataset.public_id}/")
    expect(page.locator("#drills")).to_contain_text("No restore drill yet.")
    page.get_by_role("button", name="Start drill").click()
    expect(page.locator(".messages")).to_contain_text("Restore drill started on the snapshot of")
    started = RestoreRun.objects.get(dataset=dataset, is_drill=True)
    assert started.snapshot_id == snapshot.pk
    drill = cluster.wait_for(
        lambda: RestoreRun.objects.filter(pk=started.pk, status__in=FINISHED).first(),
        WAIT_MS / 1000,
        "the worker to finish the drill",
    )
    assert drill.status == RunStatus.SUCCEEDED, f"{drill.error} {drill.issues}\n{cluster.logs()}"
    page.reload()
    row = page.locator("#drills tbody tr").first
    expect(row.locator(".badge").first).to_have_text("Succeeded")
    cells = row.locator("td")
    expect(cells.nth(1)).to_contain_text("Offsite bucket")
    expect(cells.nth(3)).to_have_text(str(len(files)))
    assert drill.measured_duration is not None
    measured = floatformat(drill.measured_duration.total_seconds(), 1)  # as the page rounds
    expect(cells.nth(4)).to_contain_text(f"{measured} s / 4 h")
    expect(cells.nth(4).locator(".badge")).to_have_count(0)  # no "over": the RTO was met
    expect(cells.nth(6)).to_contain_text(agency.admin.username)
    page.screenshot(path=str(artifacts / "drill-result.png"), full_page=True)

    assert drill.files == len(files)
    assert drill.files_verified == len(files)
    assert drill.issues == []
    assert drill.rto == timedelta(hours=4)
    assert drill.rto_met is True
    assert drill.requested_by_id == agency.admin.pk
    assert not Path(drill.destination_path).exists()  # scratch cleaned up after the check
    for name in ("posture-before-fix.png", "posture-after-fix.png", "drill-result.png"):
        assert (artifacts / name).stat().st_size > 0
