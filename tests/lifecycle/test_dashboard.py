"""The health dashboard: the green / amber / red rule from controlled data, what each actor
sees, a query count that does not grow with the clients, and charts that are well-formed SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext

from backups.models import (
    Alert,
    AlertKind,
    AlertState,
    BackupPolicy,
    BackupRun,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    RestoreRun,
    RunStatus,
    Snapshot,
)
from backups.services import protection_create
from clients.models import Client, Dataset
from kernel.charts import Series, bar_chart, stacked_bar_chart
from lifecycle.dashboard import (
    AMBER,
    GREEN,
    RED,
    DashboardOverview,
    dashboard_overview,
    storage_chart,
    success_chart,
)
from lifecycle.models import DeletionRequest, RetentionObligation
from tests.conftest import World
from tests.factories import ClientFactory, DatasetFactory, LocationFactory

NOW = datetime(2031, 1, 8, 10, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def _local(org: Any, name: str) -> Any:
    return LocationFactory(
        organization=org, name=name, kind="local", provider="filesystem", bucket="", prefix="/srv"
    )


def _protect(
    dataset: Dataset,
    *,
    snapshot_age: timedelta | None = timedelta(hours=2),
    second_age: timedelta | None = None,
    same_provider: bool = False,
    drilled: bool = True,
) -> list[Any]:
    """Give `dataset` (primary: an AWS bucket in eu-west-1) a policy with two targets, a
    snapshot on each, a successful drill yesterday and a review next month: green at NOW,
    unless an argument takes one of those away."""
    org = dataset.organization
    n = BackupPolicy.objects.filter(organization=org).count()
    if same_provider:
        targets = [
            LocationFactory(organization=org, name=f"Same A {n}"),
            LocationFactory(organization=org, name=f"Same B {n}"),
        ]
    else:
        targets = [
            LocationFactory(organization=org, name=f"Wasabi {n}", provider="wasabi"),
            _local(org, f"Disk {n}"),
        ]
    policy = BackupPolicy.objects.create(organization=org, name=f"Policy {n}", frequency="daily")
    for position, target in enumerate(targets):
        PolicyTarget.objects.create(policy=policy, location=target, position=position)
    protection = protection_create(dataset)
    protection.policy = policy
    protection.save(update_fields=["policy"])
    snapshots = []
    for target, age in zip(targets, (snapshot_age, second_age or snapshot_age), strict=True):
        if age is None:
            continue
        snapshots.append(
            Snapshot.objects.create(
                organization=org,
                dataset=dataset,
                location=target,
                manifest_id=f"{dataset.pk}-{target.pk}",
                taken_at=NOW - age,
                files=3,
                bytes=3 * 1024**2,
                new_bytes=3 * 1024**2,
            )
        )
    if drilled and snapshots:
        RestoreRun.objects.create(
            organization=org,
            dataset=dataset,
            snapshot=snapshots[0],
            destination_path="/scratch/x",
            is_drill=True,
            status=RunStatus.SUCCEEDED,
            started_at=NOW - timedelta(days=1, minutes=5),
            finished_at=NOW - timedelta(days=1),
        )
    Client.objects.filter(pk=dataset.client_id).update(next_review_at=NOW + timedelta(days=30))
    return targets


def _health(overview: DashboardOverview, client: Client) -> Any:
    return next(row for row in overview.clients if row.client.pk == client.pk)


def _overview(world: World, user: Any = None) -> DashboardOverview:
    return dashboard_overview(actor=world.actor(user or world.admin), now=NOW)


# --- the rule ---


def test_a_client_whose_datasets_are_fresh_copied_and_drilled_is_green(world: World) -> None:
    _protect(world.dataset)
    row = _health(_overview(world), world.client)
    assert row.status == GREEN
    assert row.reasons == ()
    assert row.datasets == 1


def test_a_missed_rpo_is_red_with_its_age(world: World) -> None:
    _protect(world.dataset, snapshot_age=timedelta(hours=30))
    overview = _overview(world)
    row = _health(overview, world.client)
    assert row.status == RED
    assert f"{world.dataset.name}: last good backup 30 h ago, RPO is 24 h" in row.reasons
    # Never backed up first (client B's dataset has no policy), then the oldest.
    stale = [(s.dataset.pk, s.age) for s in overview.stale_datasets]
    assert stale == [(world.dataset_b.pk, None), (world.dataset.pk, timedelta(hours=30))]


def test_an_open_backup_failure_alone_makes_the_client_red(world: World) -> None:
    _protect(world.dataset)
    Alert.objects.create(
        organization=world.org,
        kind=AlertKind.BACKUP_FAILED,
        incident_key=f"backup_failed:{world.dataset.public_id}:x",
        title=f"Backup failed: {world.dataset.name} → Wasabi",
        message="unreachable",
        client=world.client,
        dataset=world.dataset,
        opened_at=NOW - timedelta(hours=1),
    )
    row = _health(_overview(world), world.client)
    assert row.status == RED
    assert row.reasons == (f"Backup failed: {world.dataset.name} → Wasabi",)
    assert row.open_alerts == 1


def test_fewer_than_three_fresh_copies_is_red_even_within_the_rpo(world: World) -> None:
    _protect(world.dataset, second_age=timedelta(days=3))
    row = _health(_overview(world), world.client)
    assert row.status == RED
    assert len(row.reasons) == 1
    assert row.reasons[0].startswith(f"{world.dataset.name}: only 2 copies:")
    assert "3 days old, RPO is 24 h" in row.reasons[0]


def test_copies_on_the_primary_s_provider_and_region_only_are_amber(world: World) -> None:
    _protect(world.dataset, same_provider=True)
    row = _health(_overview(world), world.client)
    assert row.status == AMBER
    assert any("no offsite copy" in reason for reason in row.reasons)
    assert any("only 1 medium" in reason for reason in row.reasons)


def test_no_drill_within_the_period_is_amber(world: World) -> None:
    _protect(world.dataset, drilled=False)
    row = _health(_overview(world), world.client)
    assert row.status == AMBER
    assert row.reasons == (f"{world.dataset.name}: never restored in a drill",)


def test_a_due_review_is_amber(world: World) -> None:
    _protect(world.dataset)
    Client.objects.filter(pk=world.client.pk).update(next_review_at=NOW - timedelta(days=2))
    row = _health(_overview(world), world.client)
    assert row.status == AMBER
    assert row.reasons == ("review due since 2031-01-06",)


def test_clients_at_risk_come_first(world: World) -> None:
    _protect(world.dataset)  # client A: green; client B: never backed up, red
    amber = ClientFactory(organization=world.org, name="Aardvark", next_review_at=NOW)
    overview = _overview(world)
    assert [(row.client.pk, row.status) for row in overview.clients] == [
        (world.client_b.pk, RED),
        (amber.pk, AMBER),
        (world.client.pk, GREEN),
    ]
    assert overview.health_counts == {RED: 1, AMBER: 1, GREEN: 1}
    assert overview.worst_status == RED


def test_deleted_datasets_are_not_judged(world: World) -> None:
    _protect(world.dataset)
    gone = DatasetFactory(client=world.client, lifecycle_state="deleted")
    row = _health(_overview(world), world.client)
    assert row.status == GREEN
    assert row.datasets == 1
    assert str(gone.name) not in " ".join(row.reasons)


# --- what each actor sees ---


def _everything_of(world: World, client: Client, dataset: Dataset) -> None:
    """An alert, a failed run today, a drafted deletion and a due obligation of `client`."""
    Alert.objects.create(
        organization=world.org,
        kind=AlertKind.RPO_MISSED,
        incident_key=f"rpo_missed:{dataset.public_id}",
        title=f"RPO missed: {dataset.name}",
        message="old",
        client=client,
        dataset=dataset,
        opened_at=NOW - timedelta(hours=1),
    )
    BackupRun.objects.create(
        organization=world.org,
        dataset=dataset,
        trigger="schedule",
        status=RunStatus.FAILED,
        finished_at=NOW - timedelta(hours=1),
        error=f"target of {dataset.name} unreachable",
    )
    DeletionRequest.objects.create(
        organization=world.org,
        client=client,
        dataset=dataset,
        scope="dataset",
        reason=f"end of {client.name}",
        requested_by=world.admin2,
    )
    obligation = RetentionObligation.objects.create(
        organization=world.org,
        client=client,
        dataset=dataset,
        kind="delete_after_engagement",
        days_after_end=30,
        source="contract",
    )
    RetentionObligation.objects.filter(pk=obligation.pk).update(
        due_on=NOW.date() + timedelta(days=10)
    )


def test_a_lead_sees_only_granted_clients_and_nobody_sees_another_organization(
    world: World,
) -> None:
    _everything_of(world, world.client, world.dataset)
    _everything_of(world, world.client_b, world.dataset_b)
    audit = PostureAudit.objects.create(
        organization=world.org, location=world.dedicated_location, trigger="scheduled"
    )
    PostureFinding.objects.create(
        organization=world.org,
        audit=audit,
        location=world.dedicated_location,
        check_name="versioning",
        severity="critical",
        message="Versioning is off on the client B bucket.",
    )

    admin = _overview(world)
    assert {row.client.name for row in admin.clients} == {"Client A", "Client B"}
    assert len(admin.alerts) == 2
    assert len(admin.failed_runs_today) == admin.failed_today_count == 2
    assert len(admin.pending_approvals) == len(admin.deletions_due) == 2
    assert [row.location.pk for row in admin.findings] == [world.dedicated_location.pk]
    admin_page = _login(world.admin).get("/").content.decode()
    assert "Versioning is off on the client B bucket." in admin_page
    assert f'href="/locations/{world.dedicated_location.public_id}/posture/"' in admin_page

    lead = _overview(world, world.lead)
    assert [row.client.name for row in lead.clients] == ["Client A"]
    assert [row.alert.client_id for row in lead.alerts] == [world.client.pk]
    assert [run.dataset_id for run in lead.failed_runs_today] == [world.dataset.pk]
    assert lead.failed_today_count == 1
    assert [r.client_id for r in lead.pending_approvals] == [world.client.pk]
    assert [o.client_id for o in lead.deletions_due] == [world.client.pk]
    assert lead.findings == ()
    assert {s.dataset.client_id for s in lead.stale_datasets} == {world.client.pk}

    nobody = _overview(world, world.ungranted_lead)
    for seen in ("clients", "alerts", "failed_runs_today", "pending_approvals", "stale_datasets"):
        assert getattr(nobody, seen) == (), seen

    other = _overview(world, world.other_admin)
    assert [row.client.name for row in other.clients] == ["Other client"]
    for seen in ("alerts", "failed_runs_today", "pending_approvals", "deletions_due"):
        assert getattr(other, seen) == (), seen

    page = _login(world.lead).get("/").content.decode()
    assert "Client A" in page
    assert "Client B" not in page
    assert world.dataset_b.name not in page
    other_page = _login(world.other_admin).get("/").content.decode()
    assert "Client A" not in other_page
    assert world.dataset.name not in other_page


def test_the_page_needs_a_login_and_says_whose_clients_it_shows(world: World) -> None:
    anonymous = PageClient().get("/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    admin = _login(world.admin).get("/")
    assert admin.status_code == 200
    assert "Backup health of every client of Org A" in admin.content.decode()
    assert "The clients you hold a grant on" not in admin.content.decode()
    lead = _login(world.lead).get("/").content.decode()
    assert "Backup health of the clients you hold a grant on" in lead
    assert "Red: a dataset missed its RPO" in lead


# --- acknowledging from the dashboard ---


def _alert(world: World, client: Client, dataset: Dataset) -> Alert:
    return Alert.objects.create(
        organization=world.org,
        kind=AlertKind.BACKUP_FAILED,
        incident_key=f"backup_failed:{dataset.public_id}:y",
        title=f"Backup failed: {dataset.name}",
        message="x",
        client=client,
        dataset=dataset,
    )


def test_acknowledge_buttons_follow_who_may_acknowledge(world: World) -> None:
    alert = _alert(world, world.client, world.dataset)
    url = f"/alerts/{alert.public_id}/acknowledge/"
    assert url in _login(world.admin).get("/").content.decode()
    assert url in _login(world.lead).get("/").content.decode()  # manage on client A
    assert url not in _login(world.auditor).get("/").content.decode()
    assert url not in _login(world.member).get("/").content.decode()  # restore only

    assert _login(world.auditor).post(url).status_code == 403
    assert _login(world.ungranted_lead).post(url).status_code == 404
    assert _login(world.other_admin).post(url).status_code == 404
    assert _login(world.lead).get(url).status_code == 405
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN

    done = _login(world.lead).post(url, follow=True)
    assert done.status_code == 200
    assert "Acknowledged: Backup failed" in done.content.decode()
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED
    assert alert.acknowledged_by == world.lead
    assert url not in done.content.decode()  # acknowledged: no button any more


# --- a fixed number of queries ---


def _client_with_everything(world: World, i: int) -> None:
    client = ClientFactory(organization=world.org, name=f"Grown {i:02d}")
    dataset = DatasetFactory(client=client, location=world.location)
    targets = _protect(dataset)
    _everything_of(world, client, dataset)
    audit = PostureAudit.objects.create(
        organization=world.org, location=targets[0], trigger="scheduled"
    )
    PostureFinding.objects.create(
        organization=world.org,
        audit=audit,
        location=targets[0],
        check_name="logging",
        severity="medium",
        message="No access logging.",
    )


def _queries(call: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


# (dashboard_overview as an admin, the page as an admin, the page as a granted lead): clients,
# datasets, 3-2-1 (4; 3 when no dataset's policy has a target: no snapshot to count; the lead's
# client's dataset has its default policy from registration, which has targets here), drills
# (2), alerts (3), failed runs, runs per day, deletions (3: awaiting, due, and the verified
# ones that tell a deleted client's row), cost (2), locations and their
# latest audits with findings (3); the page adds session, user and actor (and the lead's
# grants).
PINNED = (21, 24, 24)


def test_the_dashboard_reads_in_a_fixed_number_of_queries(world: World) -> None:
    for i in range(3):
        _client_with_everything(world, i)
    admin, lead = world.actor(world.admin), world.actor(world.lead)
    admin_page, lead_page = _login(world.admin), _login(world.lead)
    # A session's first page reads the user's time zone and keeps it in the session (one
    # write, once); the pages after it are what is measured.
    admin_page.get("/")
    lead_page.get("/")

    def measure() -> tuple[int, int, int]:
        return (
            _queries(lambda: dashboard_overview(actor=admin, now=NOW)),
            _queries(lambda: admin_page.get("/")),
            _queries(lambda: lead_page.get("/")),
        )

    with_three = measure()
    for i in range(3, 12):
        _client_with_everything(world, i)
    with_twelve = measure()
    overview = dashboard_overview(actor=admin, now=NOW)
    assert len(overview.clients) == 14  # client A, client B and the twelve
    assert len(overview.findings) == 12
    assert with_three == with_twelve == PINNED
    assert dashboard_overview(actor=lead, now=NOW).clients[0].client == world.client


# --- charts ---


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314  # our own output, parsed to prove it is well-formed
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    ids = {element.get("id") for element in root.iter()}
    for referenced in (root.get("aria-labelledby") or "").split():
        assert referenced in ids
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}desc") is not None
    return root


def test_the_page_charts_are_well_formed_accessible_svg(world: World) -> None:
    _protect(world.dataset)
    BackupRun.objects.create(
        organization=world.org,
        dataset=world.dataset,
        trigger="schedule",
        status=RunStatus.SUCCEEDED,
        finished_at=NOW - timedelta(days=2),
    )
    BackupRun.objects.create(
        organization=world.org,
        dataset=world.dataset,
        trigger="schedule",
        status=RunStatus.FAILED,
        finished_at=NOW - timedelta(days=2),
    )
    overview = _overview(world)
    assert [d.day for d in overview.runs_by_day][-1] == date(2031, 1, 8)
    assert len(overview.runs_by_day) == 30
    day = next(d for d in overview.runs_by_day if d.day == date(2031, 1, 6))
    assert (day.succeeded, day.failed) == (1, 1)

    success = _parse(success_chart(overview))
    bars = success.findall(f"{SVG}g")
    assert len(bars) == 30
    titles = [bar.findtext(f"{SVG}title") for bar in bars]
    assert "01-06: 1 succeeded, 1 failed" in titles
    assert "12-10: 0 succeeded, 0 failed" in titles
    assert "Succeeded" in [t.text for t in success.iter(f"{SVG}text")]

    storage = _parse(storage_chart(overview))
    labels = [t.text for t in storage.iter(f"{SVG}text")]
    assert "Standard" in labels
    assert sum(t.bytes for t in overview.storage_by_tier) == 6 * 1024**2

    # The page embeds both, intact.
    page = _login(world.admin).get("/").content.decode()
    embedded = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    assert len(embedded) == 2
    for svg in embedded:
        _parse(svg)


def test_chart_text_is_escaped_and_empty_charts_still_parse() -> None:
    hostile = 'Tier <script>alert("x")</script> & co'
    root = _parse(
        bar_chart(
            chart_id='c"1',
            title=hostile,
            description=hostile,
            labels=[hostile],
            values=[5],
            value_labels=["5 B"],
            color="#000",
        )
    )
    assert root.findtext(f"{SVG}title") == hostile
    assert root.find(f".//{SVG}script") is None
    empty = _parse(
        bar_chart(
            chart_id="e",
            title="t",
            description="d",
            labels=[],
            values=[],
            value_labels=[],
            color="#000",
        )
    )
    assert [t.text for t in empty.iter(f"{SVG}text")] == ["Nothing to show yet."]
    stacked = _parse(
        stacked_bar_chart(
            chart_id="s",
            title="t",
            description="d",
            labels=["a", "b"],
            series=[Series("Ok", [0, 0], "#0f0"), Series("Bad", [0, 0], "#f00")],
        )
    )
    assert len(stacked.findall(f"{SVG}g")) == 2
