"""Assurance pages: the 3-2-1 panel (dataset and client), the RPO-vs-policy warning, the alert
centre with acknowledge-and-return, the posture history, the cost overview and the copy map."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import (
    Alert,
    BackupPolicy,
    DataCopy,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    Snapshot,
)
from backups.services import dataset_policy_set
from backups.services.assurance import protection_status
from backups.services.rpo import policy_rpo_floor, rpo_policy_conflict
from clients.models import Dataset
from tests.conftest import World
from tests.factories import AlertFactory, DatasetFactory, LocationFactory


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def _daily(world: World) -> BackupPolicy:
    return BackupPolicy.objects.get(organization=world.org, default_for="daily")


def _protected(world: World) -> tuple[Dataset, Any, Any]:
    """world.dataset on the daily policy with two targets; a fresh snapshot on the first."""
    first = LocationFactory(organization=world.org, name="Wasabi target", provider="wasabi")
    second = LocationFactory(
        organization=world.org,
        name="Disk target",
        kind="local",
        provider="filesystem",
        bucket="",
        region="",
        prefix="/srv/backups",
    )
    policy = _daily(world)
    PolicyTarget.objects.create(
        policy=policy,
        location=first,
        position=0,
        object_lock_mode="COMPLIANCE",
        object_lock_days=30,
    )
    PolicyTarget.objects.create(policy=policy, location=second, position=1)
    Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=first,
        manifest_id="m1",
        taken_at=timezone.now() - timedelta(hours=2),
        files=3,
        bytes=3 * 1024**3,
        new_bytes=3 * 1024**3,
    )
    return world.dataset, first, second


# --- the 3-2-1 panel ---


def test_dataset_panel_shows_each_rule_as_the_evaluation_says(world: World) -> None:
    dataset, _, _ = _protected(world)
    status = protection_status(dataset)
    assert not all(rule.met for rule in status.rules)
    assert any(rule.met for rule in status.rules)
    html = _login(world.lead).get(f"/datasets/{dataset.public_id}/").content.decode()
    panel = html.split('id="protection-panel"')[1].split("</section>")[0]
    for rule in status.rules:
        row = panel.split(f'data-rule="{rule.name}"')[1].split("</tr>")[0]
        assert f'data-met="{"yes" if rule.met else "no"}"' in row
        assert ("✓" if rule.met else "✗") in row
        assert rule.reason.replace("'", "&#x27;") in row
    assert "/copies/" in html  # the copy map is linked


def test_client_panel_shows_every_visible_dataset_and_matches(world: World) -> None:
    dataset, _, _ = _protected(world)
    html = _login(world.lead).get(f"/clients/{world.client.public_id}/").content.decode()
    panel = html.split('id="client-protection-panel"')[1].split("</section>")[0]
    row = panel.split(f'data-dataset="{dataset.public_id}"')[1].split("</tr>")[0]
    for rule in protection_status(dataset).rules:
        cell = row.split(f'data-rule="{rule.name}"')[1].split("</td>")[0]
        assert f'data-met="{"yes" if rule.met else "no"}"' in cell
        assert ("✓" if rule.met else "✗") in cell


def test_client_panel_uses_the_readers_grants(world: World) -> None:
    # A lead granted one dataset of client B sees that one, not its sibling.
    from clients import services as clients_services
    from kernel.tenancy import Actor

    sibling = DatasetFactory(
        client=world.client_b, location=world.dedicated_location, name="Sibling secret"
    )
    clients_services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.ungranted_lead,
        client=world.client_b,
        dataset=world.dataset_b,
        permission="manage",
        reason="one dataset",
    )
    html = (
        _login(world.ungranted_lead).get(f"/clients/{world.client_b.public_id}/").content.decode()
    )
    panel = html.split('id="client-protection-panel"')[1].split("</section>")[0]
    assert str(world.dataset_b.public_id) in panel
    assert str(sibling.public_id) not in panel
    assert "Sibling secret" not in panel


# --- RPO vs policy ---


def test_rpo_service_knows_what_each_frequency_meets(world: World) -> None:
    daily = _daily(world)
    assert policy_rpo_floor(daily) == timedelta(days=1)
    assert rpo_policy_conflict(rpo=timedelta(hours=12), policy=daily) == timedelta(days=1)
    assert rpo_policy_conflict(rpo=timedelta(hours=36), policy=daily) is None
    assert rpo_policy_conflict(rpo=timedelta(hours=1), policy=None) is None


@pytest.mark.parametrize(("hours", "warned"), [(12, True), (36, False)])
def test_rpo_warning_on_the_dataset_page(world: World, hours: int, warned: bool) -> None:
    Dataset.objects.filter(pk=world.dataset.pk).update(rpo=timedelta(hours=hours))
    html = _login(world.lead).get(f"/datasets/{world.dataset.public_id}/").content.decode()
    assert ('id="rpo-warning"' in html) is warned
    if warned:
        assert "the RPO is 12 h" in html
        assert "only every 1 d" in html


@pytest.mark.parametrize(("rpo", "warned"), [("12:00:00", True), ("36:00:00", False)])
def test_rpo_warning_after_registration(world: World, rpo: str, warned: bool) -> None:
    page = _login(world.lead)
    form = page.get(f"/clients/{world.client.public_id}/datasets/new/").content.decode()
    assert 'id="policy-rpo-guide"' in form
    assert "Daily — active client data" in form
    response = page.post(
        f"/clients/{world.client.public_id}/datasets/new/",
        {
            "name": f"Survey {rpo}",
            "kind": "raw_client_data",
            "classification": "confidential",
            "location": str(world.location.public_id),
            "path": "datasets/survey",
            "rpo": rpo,
            "rto": "08:00:00",
        },
        follow=True,
    )
    assert response.status_code == 200, response.content.decode()[:3000]
    html = response.content.decode()
    assert "registered" in html  # the dataset page the registration redirects to
    assert ('id="rpo-warning"' in html) is warned


# --- alert centre ---


def test_alert_centre_filters_by_state_kind_and_client(world: World) -> None:
    AlertFactory(dataset=world.dataset, title="Open one")
    AlertFactory(
        dataset=world.dataset,
        title="Acked one",
        state="acknowledged",
        acknowledged_at=timezone.now(),
        acknowledged_by=world.admin,
        acknowledgement_note="Looking at the bucket policy",
    )
    AlertFactory(
        dataset=world.dataset,
        title="Resolved one",
        state="resolved",
        resolved_at=timezone.now(),
        resolution="backup succeeded",
        kind="rpo_missed",
    )
    AlertFactory(dataset=world.dataset_b, title="Other client's")
    page = _login(world.admin)
    html = page.get("/alerts/").content.decode()  # open by default
    assert "Open one" in html
    assert "Acked one" not in html
    assert "Resolved one" not in html
    html = page.get("/alerts/?state=acknowledged").content.decode()
    assert "Acked one" in html
    assert "Looking at the bucket policy" in html
    assert "admin" in html
    html = page.get("/alerts/?state=resolved&kind=rpo_missed").content.decode()
    assert "Resolved one" in html
    assert "backup succeeded" in html
    html = page.get(f"/alerts/?state=all&client={world.client.public_id}").content.decode()
    assert "Other client's" not in html
    assert "Open one" in html
    assert f"/datasets/{world.dataset.public_id}/" in html  # linked to its object
    assert "Recovery point objective missed" in html  # kinds in words


def test_acknowledge_with_a_note_returns_to_the_alert_centre(world: World) -> None:
    alert = AlertFactory(dataset=world.dataset, title="Backup failed here")
    page = _login(world.lead)
    html = page.get("/alerts/").content.decode()
    assert f"/alerts/{alert.public_id}/acknowledge/" in html
    response = page.post(
        f"/alerts/{alert.public_id}/acknowledge/",
        {"note": "Rotating the keys", "next": "/alerts/?state=open"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/alerts/?state=open"
    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    assert alert.acknowledgement_note == "Rotating the keys"
    assert "Rotating the keys" in page.get("/alerts/?state=acknowledged").content.decode()


def test_acknowledge_ignores_a_foreign_next(world: World) -> None:
    alert = AlertFactory(dataset=world.dataset)
    response = _login(world.admin).post(
        f"/alerts/{alert.public_id}/acknowledge/", {"next": "https://evil.example/x"}
    )
    assert response["Location"] == "/"


def test_alert_centre_shows_only_what_the_reader_sees(world: World) -> None:
    AlertFactory(dataset=world.dataset_b, title="Client B's alert")
    AlertFactory(dataset=world.other_dataset, title="Other org's alert")
    lead = _login(world.lead).get("/alerts/?state=all").content.decode()
    assert "Client B&#x27;s alert" not in lead
    assert "Client B's alert" not in lead
    assert "Other org" not in lead
    member = _login(world.member)
    alert = AlertFactory(dataset=world.dataset, title="Visible to member")
    html = member.get("/alerts/").content.decode()
    assert "Visible to member" in html
    assert f"/alerts/{alert.public_id}/acknowledge/" not in html  # a member cannot acknowledge
    assert member.post(f"/alerts/{alert.public_id}/acknowledge/", {"note": "x"}).status_code == 403
    other = AlertFactory(dataset=world.other_dataset)
    assert _login(world.admin).post(f"/alerts/{other.public_id}/acknowledge/").status_code == 404
    Alert.objects.filter(pk=other.pk).delete()


# --- posture history ---


def test_posture_page_lists_the_audit_history(world: World) -> None:
    now = timezone.now()
    old = PostureAudit.objects.create(
        organization=world.org,
        location=world.location,
        trigger="scheduled",
        audited_at=now - timedelta(days=2),
        facts={"versioning": "Disabled"},
    )
    PostureFinding.objects.create(
        organization=world.org,
        audit=old,
        location=world.location,
        check_name="versioning",
        severity="high",
        message="Versioning is off",
    )
    PostureAudit.objects.create(
        organization=world.org,
        location=world.location,
        trigger="manual",
        audited_at=now - timedelta(days=1),
        reachable=False,
        error="refused",
    )
    PostureAudit.objects.create(
        organization=world.org,
        location=world.location,
        trigger="after_fix",
        audited_at=now,
        facts={"versioning": "Enabled"},
    )
    html = _login(world.lead).get(f"/locations/{world.location.public_id}/posture/").content
    history = html.decode().split('id="posture-history"')[1].split("</table>")[0]
    rows = history.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 3
    assert "latest" in rows[0]
    assert "all in place" in rows[0]
    assert "unreachable" in rows[1]
    assert "1 protection missing" in rows[2]
    assert "Daily audit" in rows[2]


# --- costs ---


def test_cost_overview_by_client_and_target_with_the_series(world: World) -> None:
    _protected(world)
    html = _login(world.admin).get("/costs/").content.decode()
    assert 'id="cost-series"' in html
    assert "<svg" in html
    assert 'role="img"' in html
    clients = html.split('id="cost-clients"')[1].split("</table>")[0]
    assert "Client A" in clients
    targets = html.split('id="cost-targets"')[1].split("</table>")[0]
    assert "Wasabi target" in targets
    assert len(html.split('id="cost-months"')[1].split("</table>")[0].split("<tr>")) >= 13


def test_cost_overview_is_scoped_to_the_reader(world: World) -> None:
    _protected(world)
    Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset_b,
        location=world.dedicated_location,
        manifest_id="b1",
        taken_at=timezone.now(),
        new_bytes=1024**3,
    )
    html = _login(world.lead).get("/costs/").content.decode()
    assert "Client B" not in html
    assert _login(world.lead).get(f"/costs/?client={world.client_b.public_id}").status_code == 404
    assert (
        _login(world.admin).get(f"/costs/?client={world.other_client.public_id}").status_code == 404
    )


# --- copy map ---


def test_copy_map_names_every_target_and_tracked_copy(world: World) -> None:
    dataset, _first, _second = _protected(world)
    snapshot = Snapshot.objects.get(dataset=dataset)
    DataCopy.objects.create(
        organization=world.org,
        dataset=dataset,
        snapshot=snapshot,
        kind="restore",
        location=world.location,
        path="datasets/restores/survey-1",
        files=3,
        made_by=world.lead,
        made_at=timezone.now(),
    )
    DataCopy.objects.create(
        organization=world.org,
        dataset=dataset,
        snapshot=snapshot,
        kind="download",
        path="notes/report.pdf",
        files=1,
        made_at=timezone.now(),
    )
    html = _login(world.lead).get(f"/datasets/{dataset.public_id}/copies/").content.decode()
    svg = html.split("<svg")[1].split("</svg>")[0]
    assert 'role="img"' in svg
    assert "aria-label=" in svg
    assert "<title>" in svg
    for text in (
        world.location.name,
        "Wasabi target",
        "Disk target",
        "Object Lock Compliance, 30 d",
        "Restored into a storage location",
        "File downloaded",
        "notes/report.pdf",
    ):
        assert text in svg, text
        assert text in html.split("</svg>")[1], text  # and in the tables
    places = html.split('id="copy-places"')[1].split("</table>")[0]
    assert "<caption>" in places
    assert "Wasabi" in places
    assert "Local filesystem" in places
    assert "within RPO" in places
    assert "none yet" in places
    copies = html.split('id="tracked-copies"')[1].split("</table>")[0]
    assert "datasets/restores/survey-1" in copies
    assert world.lead.username in copies


def test_copy_map_escapes_names(world: World) -> None:
    dataset, first, _ = _protected(world)
    first.name = '<script>alert("x")</script>'
    first.save()
    html = _login(world.admin).get(f"/datasets/{dataset.public_id}/copies/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_copy_map_access(world: World) -> None:
    assert (
        _login(world.lead).get(f"/datasets/{world.dataset_b.public_id}/copies/").status_code == 404
    )
    assert (
        _login(world.admin).get(f"/datasets/{world.other_dataset.public_id}/copies/").status_code
        == 404
    )
    assert (
        _login(world.auditor).get(f"/datasets/{world.dataset.public_id}/copies/").status_code == 200
    )
    assert PageClient().get(f"/datasets/{world.dataset.public_id}/copies/").status_code == 302


def test_policy_change_moves_the_copy_map(world: World) -> None:
    dataset, _, _ = _protected(world)
    own = BackupPolicy.objects.create(organization=world.org, name="No targets", frequency="weekly")
    dataset_policy_set(actor=world.actor(world.admin), dataset=dataset, policy=own)
    html = _login(world.admin).get(f"/datasets/{dataset.public_id}/copies/").content.decode()
    assert "No backup target" in html
    assert "Wasabi target" not in html


# --- query counts: a page costs the same with one row as with several ---


def _queries(page: PageClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert page.get(url).status_code == 200
    return len(captured)


def test_pages_do_not_query_per_row(world: World) -> None:
    _protected(world)
    page = _login(world.admin)
    urls = (
        f"/clients/{world.client.public_id}/",
        "/alerts/?state=all",
        "/settings/policies/",
        f"/datasets/{world.dataset.public_id}/copies/",
    )
    AlertFactory(dataset=world.dataset)
    page.get(urls[2])  # a session's first page keeps the user's time zone in it, once
    before = [_queries(page, url) for url in urls]
    snapshot = Snapshot.objects.get(dataset=world.dataset)
    for number in range(4):
        DatasetFactory(client=world.client, location=world.location, name=f"More {number}")
        AlertFactory(dataset=world.dataset)
        BackupPolicy.objects.create(
            organization=world.org, name=f"Extra {number}", frequency="weekly"
        ).policy_targets.create(location=world.location)
        DataCopy.objects.create(
            organization=world.org,
            dataset=world.dataset,
            snapshot=snapshot,
            kind="download",
            path=f"file-{number}",
            made_at=timezone.now(),
            made_by=world.lead,
        )
    after = [_queries(page, url) for url in urls]
    assert after == before, list(zip(urls, before, after, strict=True))
