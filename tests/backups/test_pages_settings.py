"""Settings pages: backup policies with ordered targets, storage prices, notification settings
and their test. Same services and validation as the API; typed input kept on errors; the
webhook URL never comes back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client as PageClient

from backups.models import BackupPolicy, NotificationSettings, PolicyTarget, StoragePrice
from backups.services import notifications
from tests.conftest import World
from tests.factories import LocationFactory

SECRET_WEBHOOK = "http://127.0.0.1:9/hooks/T0KEN-very-secret-path"


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def _policy_post(**extra: Any) -> dict[str, Any]:
    data = {
        "name": "Nightly two targets",
        "frequency": "daily",
        "time_of_day": "03:30",
        "keep_last": "0",
        "keep_hourly": "0",
        "keep_daily": "14",
        "keep_weekly": "0",
        "keep_monthly": "6",
        "keep_yearly": "0",
        "storage_class": "STANDARD",
        "infrequent_access_after_days": "",
        "archive_after_days": "",
        "compression_level": "3",
        "drill_every_days": "30",
        "target_0": "",
        "lock_mode_0": "",
        "lock_days_0": "",
        "target_1": "",
        "lock_mode_1": "",
        "lock_days_1": "",
    }
    data.update(extra)
    return data


@pytest.fixture
def targets(world: World) -> tuple[Any, Any]:
    first = LocationFactory(organization=world.org, name="Wasabi copy", provider="wasabi")
    second = LocationFactory(organization=world.org, name="AWS copy", region="eu-central-1")
    return first, second


# --- policies ---


def _daily(world: World) -> BackupPolicy:
    return BackupPolicy.objects.get(organization=world.org, default_for="daily")


def test_policy_list_shows_frequency_retention_rpo_and_ordered_targets(
    world: World, targets: tuple[Any, Any]
) -> None:
    first, second = targets
    policy = BackupPolicy.objects.get(organization=world.org, default_for="daily")
    PolicyTarget.objects.create(policy=policy, location=second, position=0)
    PolicyTarget.objects.create(
        policy=policy,
        location=first,
        position=1,
        object_lock_mode="COMPLIANCE",
        object_lock_days=30,
    )
    html = _login(world.member).get("/settings/policies/").content.decode()
    assert "Daily — active client data" in html
    assert "Daily at 02:00 UTC" in html
    assert "30 daily · 12 monthly" in html
    assert "1 d" in html  # the shortest RPO a daily policy meets
    row = html.split(str(policy.public_id))[1].split("</tr>")[0]
    assert row.index("AWS copy") < row.index("Wasabi copy")  # in their order
    assert "Object Lock Compliance, 30 d" in row
    assert "/settings/policies/new/" not in html  # a member reads, does not write
    admin = _login(world.admin).get("/settings/policies/").content.decode()
    assert "/settings/policies/new/" in admin
    assert f"/settings/policies/{policy.public_id}/edit/" in admin


def test_policy_list_hides_a_dedicated_target_the_reader_does_not_see(world: World) -> None:
    policy = BackupPolicy.objects.get(organization=world.org, default_for="daily")
    PolicyTarget.objects.create(policy=policy, location=world.dedicated_location, position=0)
    html = _login(world.lead).get("/settings/policies/").content.decode()
    assert world.dedicated_location.name not in html  # client B's bucket, lead has client A
    assert "a client's dedicated location" in html
    assert (
        world.dedicated_location.name
        in _login(world.admin).get("/settings/policies/").content.decode()
    )


def test_admin_creates_a_policy_with_two_ordered_targets(
    world: World, targets: tuple[Any, Any]
) -> None:
    first, second = targets
    page = _login(world.admin)
    assert page.get("/settings/policies/new/").status_code == 200
    response = page.post(
        "/settings/policies/new/",
        _policy_post(
            target_0=str(second.public_id),
            target_1=str(first.public_id),
            lock_mode_1="GOVERNANCE",
            lock_days_1="7",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = BackupPolicy.objects.get(organization=world.org, name="Nightly two targets")
    rows = list(policy.policy_targets.order_by("position"))
    assert [t.location_id for t in rows] == [second.pk, first.pk]
    assert (rows[1].object_lock_mode, rows[1].object_lock_days) == ("GOVERNANCE", 7)
    assert policy.keep_daily == 14
    assert policy.time_of_day.hour == 3
    assert policy.drill_every is not None
    assert policy.drill_every.days == 30


def test_edit_reorders_and_removes_targets(world: World, targets: tuple[Any, Any]) -> None:
    first, second = targets
    page = _login(world.owner)
    page.post(
        "/settings/policies/new/",
        _policy_post(target_0=str(first.public_id), target_1=str(second.public_id)),
    )
    policy = BackupPolicy.objects.get(organization=world.org, name="Nightly two targets")
    url = f"/settings/policies/{policy.public_id}/edit/"
    html = page.get(url).content.decode()
    assert html.index(f'value="{first.public_id}" selected') < html.index(
        f'value="{second.public_id}" selected'
    )
    response = page.post(
        url, _policy_post(target_0=str(second.public_id), target_1=str(first.public_id))
    )
    assert response.status_code == 302
    assert list(
        policy.policy_targets.order_by("position").values_list("location_id", flat=True)
    ) == [
        second.pk,
        first.pk,
    ]
    page.post(url, _policy_post(target_0="", target_1=str(first.public_id)))
    assert list(policy.policy_targets.values_list("location_id", flat=True)) == [first.pk]


def test_policy_field_errors_keep_what_was_typed(world: World, targets: tuple[Any, Any]) -> None:
    first, _ = targets
    page = _login(world.admin)
    response = page.post(
        "/settings/policies/new/",
        _policy_post(
            name="Typed name kept",
            keep_daily="-7",
            drill_every_days="400",
            target_0=str(first.public_id),
            target_1=str(first.public_id),
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Typed name kept"' in html
    assert 'value="-7"' in html
    assert 'value="400"' in html
    assert "At most" in html  # the API's drill_every bound, on the days field
    assert not BackupPolicy.objects.filter(name="Typed name kept").exists()


def test_policy_edit_errors_keep_input_and_change_nothing(
    world: World, targets: tuple[Any, Any]
) -> None:
    first, _ = targets
    policy = _daily(world)
    url = f"/settings/policies/{policy.public_id}/edit/"
    response = _login(world.admin).post(
        url,
        _policy_post(
            name="Renamed but invalid",
            compression_level="99",
            target_0=str(first.public_id),
            lock_mode_0="COMPLIANCE",
            lock_days_0="0",
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Renamed but invalid"' in html
    assert 'value="99"' in html
    assert f'value="{first.public_id}" selected' in html
    policy.refresh_from_db()
    assert policy.name == "Daily — active client data"
    assert not policy.policy_targets.exists()


def test_policy_service_refusal_keeps_input(world: World) -> None:
    # A local directory has no Object Lock: targets_set refuses (the API's rule, its message).
    local = LocationFactory(
        organization=world.org,
        name="Local disk",
        kind="local",
        provider="filesystem",
        bucket="",
        region="",
    )
    response = _login(world.admin).post(
        "/settings/policies/new/",
        _policy_post(
            name="Locked local",
            target_0=str(local.public_id),
            lock_mode_0="COMPLIANCE",
            lock_days_0="3",
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Object Lock needs an S3 bucket." in html
    assert 'value="Locked local"' in html
    assert not BackupPolicy.objects.filter(name="Locked local").exists()


def test_duplicate_policy_name_is_a_field_error(world: World) -> None:
    existing = BackupPolicy.objects.filter(organization=world.org).first()
    assert existing is not None
    response = _login(world.admin).post("/settings/policies/new/", _policy_post(name=existing.name))
    assert response.status_code == 400
    assert f'value="{existing.name}"' in response.content.decode()


@pytest.mark.parametrize("role", ["lead", "member", "auditor"])
def test_only_owners_and_admins_write_policies(world: World, role: str) -> None:
    user = getattr(world, role)
    policy = BackupPolicy.objects.filter(organization=world.org).first()
    assert policy is not None
    page = _login(user)
    assert page.get("/settings/policies/new/").status_code == 403
    assert page.post("/settings/policies/new/", _policy_post()).status_code == 403
    edit = f"/settings/policies/{policy.public_id}/edit/"
    assert page.get(edit).status_code == 403
    assert page.post(edit, _policy_post(name="hijacked")).status_code == 403
    policy.refresh_from_db()
    assert policy.name != "hijacked"


def test_another_organizations_policy_is_404(world: World) -> None:
    from backups.services import policies_create_defaults

    foreign = policies_create_defaults(world.other_org)[0]
    BackupPolicy.objects.filter(pk=foreign.pk).update(name="Foreign org policy")
    page = _login(world.admin)
    assert page.get(f"/settings/policies/{foreign.public_id}/edit/").status_code == 404
    assert (
        page.post(f"/settings/policies/{foreign.public_id}/edit/", _policy_post()).status_code
        == 404
    )
    assert "Foreign org policy" not in page.get("/settings/policies/").content.decode()


def test_a_foreign_location_cannot_be_a_target(world: World) -> None:
    foreign = LocationFactory(organization=world.other_org, name="Foreign bucket")
    response = _login(world.admin).post(
        "/settings/policies/new/", _policy_post(target_0=str(foreign.public_id))
    )
    assert response.status_code == 400
    assert "is visible to you" in response.content.decode()


# --- prices ---


def test_price_list_shows_and_edits_prices_in_place(world: World) -> None:
    page = _login(world.admin)
    html = page.get("/settings/prices/").content.decode()
    assert "Amazon S3" in html
    assert "Deep archive" in html
    assert 'name="price__aws__STANDARD"' in html
    response = page.post(
        "/settings/prices/", {"price__aws__STANDARD": "0.02", "price__gcs__STANDARD": ""}
    )
    assert response.status_code == 302
    row = StoragePrice.objects.get(organization=world.org, provider="aws", storage_class="STANDARD")
    assert row.usd_per_gb_month == Decimal("0.02")
    assert 'value="0.02"' in page.get("/settings/prices/").content.decode()
    page.post("/settings/prices/", {"price__aws__STANDARD": ""})  # empty: back to the list price
    assert not StoragePrice.objects.filter(organization=world.org).exists()


def test_price_errors_keep_input(world: World) -> None:
    response = _login(world.admin).post(
        "/settings/prices/", {"price__aws__STANDARD": "-1", "price__aws__STANDARD_IA": "abc"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="-1"' in html
    assert 'value="abc"' in html
    assert not StoragePrice.objects.filter(organization=world.org).exists()


@pytest.mark.parametrize("role", ["lead", "member", "auditor"])
def test_prices_are_read_by_all_and_written_by_admins(world: World, role: str) -> None:
    page = _login(getattr(world, role))
    html = page.get("/settings/prices/").content.decode()
    assert "Amazon S3" in html
    assert 'name="price__aws__STANDARD"' not in html
    assert page.post("/settings/prices/", {"price__aws__STANDARD": "1"}).status_code == 403
    assert not StoragePrice.objects.filter(organization=world.org).exists()


def test_prices_are_per_organization(world: World) -> None:
    StoragePrice.objects.create(
        organization=world.other_org,
        provider="aws",
        storage_class="STANDARD",
        usd_per_gb_month=Decimal("9.87654"),
    )
    assert "9.87654" not in _login(world.admin).get("/settings/prices/").content.decode()


# --- notifications ---


def test_notification_settings_seal_the_webhook_and_never_show_it(world: World) -> None:
    page = _login(world.admin)
    assert page.get("/settings/notifications/").status_code == 200
    response = page.post(
        "/settings/notifications/",
        {"email_enabled": "on", "webhook_action": "replace", "webhook_url": SECRET_WEBHOOK},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "T0KEN" not in html
    assert "hooks" not in html
    assert "Set — posts to" in html
    assert "127.0.0.1" in html
    saved = NotificationSettings.objects.get(organization=world.org)
    assert saved.has_webhook
    assert SECRET_WEBHOOK.encode() not in bytes(saved.webhook_url_sealed)
    # Kept when the form says keep (and still never shown), removed when it says remove.
    page.post("/settings/notifications/", {"webhook_action": "keep"})
    saved.refresh_from_db()
    assert saved.has_webhook
    assert not saved.email_enabled
    for url in ("/settings/notifications/", "/settings/policies/", "/alerts/", "/costs/"):
        assert "T0KEN" not in page.get(url).content.decode()
    page.post("/settings/notifications/", {"email_enabled": "on", "webhook_action": "remove"})
    saved.refresh_from_db()
    assert not saved.has_webhook
    assert saved.email_enabled


def test_a_refused_webhook_is_a_field_error_and_never_echoed(world: World) -> None:
    response = _login(world.admin).post(
        "/settings/notifications/",
        {"email_enabled": "on", "webhook_action": "replace", "webhook_url": "ftp://x/T0KEN"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Give an http:// or https:// URL." in html
    assert "T0KEN" not in html  # a secret is not typed back into the page
    assert 'name="email_enabled" checked' in html  # the rest of the input is kept


def test_notification_test_sends_through_the_real_path(world: World) -> None:
    world.admin.email = "admin@example.com"
    world.admin.save()
    page = _login(world.admin)
    response = page.post("/settings/notifications/test/", {"channel": "email"}, follow=True)
    assert response.status_code == 200
    assert "Sent to admin@example.com." in response.content.decode()
    assert mail.outbox[-1].to == ["admin@example.com"]
    # The webhook: sealed, then reached through the egress guard (a closed loopback port).
    notifications.notification_settings_update(
        actor=world.actor(world.admin), webhook_url=SECRET_WEBHOOK
    )
    html = page.post("/settings/notifications/test/", {"channel": "webhook"}, follow=True)
    text = html.content.decode()
    assert "not delivered" in text
    assert "127.0.0.1" in text
    assert "T0KEN" not in text


@pytest.mark.parametrize("role", ["lead", "member", "auditor"])
def test_notification_settings_are_for_admins(world: World, role: str) -> None:
    page = _login(getattr(world, role))
    assert page.get("/settings/notifications/").status_code == 403
    assert page.post("/settings/notifications/", {"webhook_action": "remove"}).status_code == 403
    assert page.post("/settings/notifications/test/", {"channel": "email"}).status_code == 403
    assert not mail.outbox


def test_notification_settings_are_per_organization(world: World) -> None:
    notifications.notification_settings_update(
        actor=world.actor(world.other_admin), webhook_url="http://127.0.0.1:9/other-org"
    )
    html = _login(world.admin).get("/settings/notifications/").content.decode()
    assert "Not set." in html
