"""An admin's dashboard in a real browser: a client whose copies are all fresh and drilled is
green; after a backup to an unreachable bucket fails, that client's row turns red and says why.
Screenshots of both states are saved as test artifacts (var/test-artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from backups.models import Alert, AlertKind, BackupRun, Frequency, RunStatus, Trigger
from backups.services import (
    backup_run_execute,
    backup_run_request,
    dataset_policy_set,
    policy_create,
    restore_run_execute,
)
from backups.services.drills import drill_start
from backups.tasks import restore_run_task
from clients import services as clients_services
from clients.models import Client, Dataset, StorageLocation
from tests.backups.conftest import Agency, make_agency, sample_files
from tests.e2e.conftest import log_in
from tests.s3server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _protected_dataset(
    agency: Agency, client: Client, name: str, targets: list[StorageLocation]
) -> Dataset:
    """A dataset of `client` backed up by its own policy to `targets` (through the services)."""
    agency.client = client
    dataset = agency.dataset(name, files=sample_files())
    policy = policy_create(
        actor=agency.actor,
        name=f"{name} policy",
        frequency=Frequency.DAILY,
        keep_daily=7,
        targets=targets,
    )
    dataset_policy_set(actor=agency.actor, dataset=dataset, policy=policy)
    return dataset


def _back_up(actor: Any, dataset: Dataset) -> BackupRun:
    """Carry a backup out here, as the worker's task would on its final attempt."""
    run = backup_run_request(actor=actor, dataset=dataset, trigger=Trigger.MANUAL, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


def _row(page: Any, client: Client) -> Any:
    return page.locator("#client-health tbody tr", has_text=client.name)


def test_an_admin_sees_the_client_turn_red_after_a_backup_failure(
    live_server: Any,
    page: Any,
    artifacts: Path,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Drills are carried out here; nothing may reach a developer's broker.
    monkeypatch.setattr(restore_run_task, "delay", lambda *args, **kwargs: None)
    agency = make_agency(s3_endpoint, slug="ops")
    healthy = clients_services.client_create(actor=agency.actor, name="Northwind Health")
    ledger = _protected_dataset(
        agency,
        healthy,
        "Claims ledger",
        [agency.s3_location("Offsite bucket"), agency.local_location("Backup disk")],
    )
    assert _back_up(agency.actor, ledger).status == RunStatus.SUCCEEDED
    drill = drill_start(actor=agency.actor, dataset=ledger)
    drilled = restore_run_execute(str(drill.public_id))
    assert drilled is not None
    assert drilled.status == RunStatus.SUCCEEDED, drilled.error

    log_in(page, live_server.url, agency.admin.username)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    healthy_row = _row(page, healthy)
    expect(healthy_row).to_have_attribute("data-health", "green")
    expect(healthy_row.locator(".badge.health")).to_have_text("Healthy")
    page.screenshot(path=str(artifacts / "dashboard-green.png"), full_page=True)

    # A second client whose only target is a bucket on a port nobody listens on.
    failing = clients_services.client_create(actor=agency.actor, name="Acme Retail")
    gone = agency.s3_location(
        "Gone bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        bucket="gone-bucket",
        create_bucket=False,
    )
    orders = _protected_dataset(agency, failing, "Order history", [gone])
    failed = _back_up(agency.actor, orders)
    assert failed.status == RunStatus.FAILED
    assert Alert.objects.filter(dataset=orders, kind=AlertKind.BACKUP_FAILED, state="open").exists()

    page.reload()
    red_row = _row(page, failing)
    expect(red_row).to_have_attribute("data-health", "red")
    expect(red_row.locator(".badge.health")).to_have_text("At risk")
    expect(red_row).to_contain_text("Backup failed: Order history → Gone bucket")
    expect(red_row).to_contain_text("Order history: no good backup yet")
    expect(_row(page, healthy)).to_have_attribute("data-health", "green")
    expect(page.locator("#tile-failed .tile-value")).to_have_text("1")
    expect(page.locator("#failed-runs")).to_contain_text("Order history")
    expect(page.locator("#stale-datasets")).to_contain_text("Order history")
    alerts = page.locator("#alerts")
    expect(alerts).to_contain_text("Backup failed: Order history → Gone bucket")
    expect(alerts.get_by_role("button", name="Acknowledge")).to_have_count(1)
    expect(page.locator("svg#chart-backup-success title").first).to_have_text(
        "Backup runs per day, last 30 days"
    )
    page.screenshot(path=str(artifacts / "dashboard-red.png"), full_page=True)

    # The admin acknowledges it from the dashboard: still unresolved, still red.
    alerts.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text("Acknowledged: Backup failed")
    expect(page.locator("#alerts")).to_contain_text("by ops-admin")
    expect(_row(page, failing)).to_have_attribute("data-health", "red")
