"""Django admin is no way around the lifecycle: a superuser cannot delete (delete view, the
changelist's "delete selected" action, its confirmation POST) a dataset under a legal hold or
any other row whose removal is a service's step; lifecycle fields do not take from a change
form; locations are not added here; and the admin's sign-in is throttled and recorded like
/login/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import models
from django.test import Client as BrowserClient

from backups.models import DatasetProtection
from backups.services import protection_create
from clients.models import Dataset
from lifecycle.models import AccessEvent, LegalHold, PendingAccessEvent, SigningKey
from tests.agencyops.conftest import w
from tests.conftest import World

__all__ = ["w"]  # the fixture

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def operator(w: World) -> BrowserClient:
    """The owner made a superuser: every admin permission Django can give."""
    w.owner.is_staff = w.owner.is_superuser = True
    w.owner.save()
    page = BrowserClient()
    page.force_login(w.owner)
    return page


def _url(obj: models.Model, view: str = "") -> str:
    meta = obj._meta
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    return f"{base}{obj.pk}/{view}" if view else base


def _refused_everywhere(page: BrowserClient, obj: models.Model) -> None:
    """No delete view, no delete action, no deletion by posting the action anyway."""
    label = f"{obj._meta.model_name} {obj.pk}"
    listing = page.get(_url(obj))
    assert listing.status_code == 200, label
    assert b"delete_selected" not in listing.content, label
    assert page.get(_url(obj, "delete/")).status_code == 403, label
    assert page.post(_url(obj, "delete/"), {"post": "yes"}).status_code == 403, label
    detail = page.get(_url(obj, "change/"))
    assert detail.status_code == 200, label
    assert _url(obj, "delete/").encode() not in detail.content, label
    # The changelist's action, posted as from the list and as from its confirmation page.
    selected = {"action": "delete_selected", "_selected_action": [str(obj.pk)]}
    page.post(_url(obj), {**selected, "index": "0"})
    page.post(_url(obj), {**selected, "post": "yes"})
    assert type(obj)._default_manager.filter(pk=obj.pk).exists(), label


def test_a_dataset_under_a_legal_hold_cannot_be_deleted_from_the_admin(
    w: World, operator: BrowserClient
) -> None:
    # A hold on the whole client: nothing in the database stops deleting one of its datasets
    # (the hold's foreign key names the client), only the lifecycle does.
    hold = LegalHold.objects.create(organization=w.org, client=w.client, reason="litigation")
    assert hold.is_active
    dataset = w.dataset
    protection = protection_create(dataset)
    events_before = PendingAccessEvent.objects.count()

    _refused_everywhere(operator, dataset)

    dataset.refresh_from_db()
    assert dataset.lifecycle_state == "active"
    assert DatasetProtection.objects.get(pk=protection.pk).wrapped_key == protection.wrapped_key
    assert PendingAccessEvent.objects.count() == events_before  # nothing happened to record


def test_no_lifecycle_row_is_deleted_from_the_admin(w: World, operator: BrowserClient) -> None:
    rows: list[models.Model] = [
        w.client_b,
        w.engagement_b,
        w.dataset_b,
        w.dedicated_location,
        w.snapshot_b,
        w.run_b,
        w.restore_b,
        protection_create(w.dataset_b),  # holds the wrapped data key
        SigningKey.objects.get(organization=w.org),
        AccessEvent.objects.get(pk=w.event_b.pk),
        w.obligation_b,
        w.hold_b,
        w.deletion_request_b,
        w.certificate_b,
        w.grant_b,  # deleting a grant here would leave its guardian rows, and the access
    ]
    for row in rows:
        _refused_everywhere(operator, row)


def test_a_cascade_into_a_kept_row_is_refused(w: World, operator: BrowserClient) -> None:
    """Deleting a user whose grant is kept: Django asks the grant's admin, which refuses."""
    url = f"/admin/auth/user/{w.member.pk}/delete/"
    assert operator.post(url, {"post": "yes"}).status_code == 403
    assert get_user_model().objects.filter(pk=w.member.pk).exists()


def test_lifecycle_fields_do_not_take_from_the_change_form(
    w: World, operator: BrowserClient
) -> None:
    dataset = w.dataset
    response = operator.post(
        _url(dataset, "change/"),
        {
            "name": "Renamed in the admin",
            "kind": dataset.kind,
            "classification": dataset.classification,
            "source": dataset.source,
            "owner": "",
            "rpo": "1 00:00:00",
            "rto": "08:00:00",
            "registered_by": "",
            # not fields of the form: ignored
            "lifecycle_state": "deleted",
            "client": str(w.client_b.pk),
            "location": str(w.dedicated_location.pk),
            "path": "../elsewhere",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset.refresh_from_db()
    assert dataset.name == "Renamed in the admin"  # the form did save
    assert dataset.lifecycle_state == "active"
    assert (dataset.client_id, dataset.location_id) == (w.client.pk, w.location.pk)
    assert not dataset.path.startswith("..")
    assert Dataset.objects.get(pk=dataset.pk).lifecycle_state == "active"


def test_read_only_fields_are_no_inputs(w: World, operator: BrowserClient) -> None:
    forms: list[tuple[models.Model, tuple[str, ...]]] = [
        (w.client, ("status", "organization")),
        (w.engagement, ("status", "ends_on", "organization", "client")),
        (w.dataset, ("lifecycle_state", "organization", "client", "engagement", "location")),
        (
            w.location,
            ("organization", "kind", "provider", "endpoint_url", "bucket", "prefix", "client"),
        ),
        (protection_create(w.dataset), ("pruning_suspended", "key_destroyed_at")),
    ]
    for obj, fields in forms:
        html = operator.get(_url(obj, "change/")).content.decode()
        assert 'name="name"' in html or 'name="policy"' in html  # an editable form it is
        for field in fields:
            assert f'name="{field}"' not in html, (obj._meta.model_name, field)
    # The operator sees every lifecycle record, and adds none of them (nor a location).
    for obj in (w.obligation_b, w.hold_b, w.certificate_b, w.deletion_request_b, w.location):
        assert operator.get(_url(obj)).status_code == 200
        assert operator.get(_url(obj, "change/")).status_code == 200
        assert operator.get(f"{_url(obj)}add/").status_code == 403, obj._meta.model_name
    key = SigningKey.objects.get(organization=w.org)
    page = operator.get(_url(key, "change/")).content.decode()
    assert key.public_key in page
    assert "private_sealed" not in page


# --- the admin's sign-in ---


def _admin_sign_in(browser: BrowserClient, username: str, password: str) -> Any:
    return browser.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR="203.0.113.5",
    )


def test_the_admin_login_is_throttled_and_recorded_like_login(w: World, settings: Any) -> None:
    w.lead.set_password(PASSWORD)
    w.lead.is_staff = w.lead.is_superuser = True
    w.lead.save()
    PendingAccessEvent.objects.all().delete()
    browser = BrowserClient()
    for _ in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT):
        response = _admin_sign_in(browser, w.lead.username, "guess")
        assert response.status_code == 200  # the admin's form again, with its error
        assert b"Please enter the correct username and password" in response.content

    response = _admin_sign_in(browser, w.lead.username, PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert b'name="password"' in response.content  # the admin's page, unchecked
    assert 0 < int(response["Retry-After"]) <= settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    assert "_auth_user_id" not in browser.session

    # Each failure is a login_failed access event of the lead's organization, as at /login/.
    events = [p.payload for p in PendingAccessEvent.objects.order_by("id")]
    assert [e["action"] for e in events] == [
        "login_failed"
    ] * settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT
    assert {(e["actor_label"], e["source_ip"]) for e in events} == {
        (w.lead.username, "203.0.113.5")
    }

    # The same counters as /login/: the account is refused there too.
    refused = BrowserClient().post(
        "/login/",
        {"username": w.lead.username, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.5",
    )
    assert refused.status_code == 429


def test_failures_at_login_count_at_the_admin_login(w: World, settings: Any) -> None:
    w.admin.set_password(PASSWORD)
    w.admin.is_staff = True
    w.admin.save()
    for _ in range(settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT):
        BrowserClient().post(
            "/login/",
            {"username": w.admin.username, "password": "guess"},
            REMOTE_ADDR="203.0.113.5",
        )
    assert _admin_sign_in(BrowserClient(), w.admin.username, PASSWORD).status_code == 429


def test_the_admin_login_still_signs_staff_in(w: World) -> None:
    w.owner.set_password(PASSWORD)
    w.owner.is_staff = w.owner.is_superuser = True
    w.owner.save()
    browser = BrowserClient()
    assert browser.get("/admin/").status_code == 302  # to the (throttled) login
    page = browser.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    assert b"Django administration" in page.content or b"site administration" in page.content
    response = _admin_sign_in(browser, w.owner.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/login/").status_code == 302  # already in: to the index
    # A member who is not staff signs in at /login/, not here.
    w.member.set_password(PASSWORD)
    w.member.save()
    not_staff = _admin_sign_in(BrowserClient(), w.member.username, PASSWORD)
    assert not_staff.status_code == 200
    assert b"staff account" in not_staff.content
