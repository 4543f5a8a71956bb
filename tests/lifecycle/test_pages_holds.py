"""Legal holds in pages: list (active, released), place, release with a comment, and the banner
on the client, dataset and deletion pages."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from lifecycle import services
from lifecycle.models import LegalHold
from tests.backups.conftest import agency, new_agency
from tests.lifecycle.pages_support import Desk, desk
from tests.s3server import s3_endpoint

__all__ = ["agency", "desk", "new_agency", "s3_endpoint"]


def test_an_admin_places_a_hold_on_a_dataset(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    url = reverse("hold-new")
    form = page.get(f"{url}?client={desk.agency.client.public_id}&dataset={desk.dataset.public_id}")
    assert form.status_code == 200
    assert f'value="{desk.dataset.public_id}" selected' in form.content.decode()
    done = page.post(
        url,
        {
            "client": str(desk.agency.client.public_id),
            "dataset": str(desk.dataset.public_id),
            "reason": "subpoena 7",
        },
    )
    assert done.status_code == 302
    hold = LegalHold.objects.get()
    assert (hold.dataset, hold.reason, hold.placed_by) == (
        desk.dataset,
        "subpoena 7",
        desk.agency.admin,
    )
    listed = page.get(reverse("hold-list")).content.decode()
    assert "subpoena 7" in listed
    assert f'id="hold-row-{hold.public_id}"' in listed


def test_a_missing_reason_keeps_the_choice(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    refused = page.post(
        reverse("hold-new"),
        {"client": str(desk.agency.client.public_id), "dataset": str(desk.dataset.public_id)},
    )
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "This field is required" in html
    assert f'value="{desk.dataset.public_id}" selected' in html
    assert not LegalHold.objects.exists()


def test_only_admins_place_and_release(desk: Desk) -> None:
    hold = services.legal_hold_place(actor=desk.agency.actor, client=desk.agency.client, reason="x")
    lead = desk.page(desk.lead)
    assert lead.get(reverse("hold-new")).status_code == 403
    listed = lead.get(reverse("hold-list")).content.decode()
    assert "An admin releases it." in listed
    refused = lead.post(reverse("hold-release", args=[hold.public_id]), {"comment": "no"})
    assert refused.status_code == 403
    hold.refresh_from_db()
    assert hold.is_active


def test_release_with_a_comment_moves_it_to_released(desk: Desk) -> None:
    hold = services.legal_hold_place(
        actor=desk.agency.actor, client=desk.agency.client, reason="litigation"
    )
    page = desk.page(desk.agency.admin)
    listed = page.get(reverse("hold-list")).content.decode()
    assert 'data-confirm="Release this legal hold?' in listed
    done = page.post(reverse("hold-release", args=[hold.public_id]), {"comment": "case settled"})
    assert done.status_code == 302
    hold.refresh_from_db()
    assert (hold.is_active, hold.release_comment, hold.released_by) == (
        False,
        "case settled",
        desk.agency.admin,
    )
    after = page.get(reverse("hold-list")).content.decode()
    released = after[after.index('id="holds-released"') :]
    assert "case settled" in released
    again = page.post(reverse("hold-release", args=[hold.public_id]), follow=True)
    assert "already released" in again.content.decode()


def test_the_banner_shows_on_client_dataset_and_deletion_pages(desk: Desk) -> None:
    request = services.deletion_request_create(
        actor=desk.agency.actor, client=desk.agency.client, dataset=desk.dataset, reason="end"
    )
    services.legal_hold_place(
        actor=desk.agency.actor, client=desk.agency.client, dataset=desk.dataset, reason="hold-X"
    )
    page = desk.page(desk.lead)
    for url in (
        reverse("client-detail", args=[desk.agency.client.public_id]),
        reverse("dataset-detail", args=[desk.dataset.public_id]),
        reverse("deletion-request-page", args=[request.public_id]),
    ):
        html = page.get(url).content.decode()
        assert 'class="hold-banner"' in html, url
        assert "hold-X" in html, url


def test_another_organization_sees_none_of_it(desk: Desk, new_agency: Any) -> None:
    hold = services.legal_hold_place(
        actor=desk.agency.actor, client=desk.agency.client, reason="secret-hold"
    )
    other = desk.page(new_agency("stranger").admin)
    assert "secret-hold" not in other.get(reverse("hold-list")).content.decode()
    assert other.post(reverse("hold-release", args=[hold.public_id])).status_code == 404
    placed = other.post(
        reverse("hold-new"), {"client": str(desk.agency.client.public_id), "reason": "x"}
    )
    assert placed.status_code == 400  # not one of its clients: not a choice at all
    assert LegalHold.objects.count() == 1
