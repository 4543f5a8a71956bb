"""Server-rendered pages: login, dashboard, client, dataset, the register form."""

from __future__ import annotations

from typing import Any

from django.test import Client as PageClient

from clients.models import Dataset
from tests.conftest import World


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def test_login_page_and_redirect(world: World) -> None:
    anonymous = PageClient()
    response = anonymous.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    login = anonymous.get("/login/")
    assert login.status_code == 200
    assert b"Log in" in login.content
    posted = anonymous.post(
        "/login/", {"username": "owner", "password": "correct horse battery staple"}
    )
    assert posted.status_code == 302
    assert b"Client A" in anonymous.get("/").content


def test_dashboard_shows_the_organization_to_admins_and_grants_to_leads(world: World) -> None:
    admin_page = _login(world.admin).get("/").content.decode()
    assert "Client A" in admin_page
    assert "Client B" in admin_page
    assert "Other client" not in admin_page
    lead_page = _login(world.lead).get("/").content.decode()
    assert "Client A" in lead_page
    assert "Client B" not in lead_page


def test_client_and_dataset_pages_are_scoped(world: World) -> None:
    lead = _login(world.lead)
    ok = lead.get(f"/clients/{world.client.public_id}/")
    assert ok.status_code == 200
    assert world.dataset.name in ok.content.decode()
    assert "Register dataset" in ok.content.decode()
    assert lead.get(f"/clients/{world.client_b.public_id}/").status_code == 404
    assert lead.get(f"/datasets/{world.dataset_b.public_id}/").status_code == 404
    assert lead.get(f"/clients/{world.other_client.public_id}/").status_code == 404
    detail = lead.get(f"/datasets/{world.dataset.public_id}/")
    assert detail.status_code == 200
    assert world.location.name in detail.content.decode()


def test_register_dataset_form_validates_on_the_server(world: World) -> None:
    lead = _login(world.lead)
    url = f"/clients/{world.client.public_id}/datasets/new/"
    form = {
        "name": "Survey answers",
        "kind": "raw_client_data",
        "classification": "restricted",
        "location": str(world.location.public_id),
        "path": "../../etc",
        "rpo": "soon",
        "rto": "04:00:00",
    }
    bad = lead.post(url, form)
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Enter a valid duration" in page
    assert not Dataset.objects.filter(name="Survey answers").exists()
    form["rpo"] = "12:00:00"
    still_bad = lead.post(url, form)
    assert still_bad.status_code == 400
    assert "may not contain" in still_bad.content.decode()
    form["path"] = "datasets/surveys/2026"  # in client A's folder
    good = lead.post(url, form)
    assert good.status_code == 302
    dataset = Dataset.objects.get(name="Survey answers")
    assert good["Location"] == f"/datasets/{dataset.public_id}/"
    assert dataset.registered_by == world.lead


def test_register_form_refuses_leads_without_manage(world: World) -> None:
    member = _login(world.member)
    response = member.get(f"/clients/{world.client.public_id}/datasets/new/")
    assert response.status_code == 403
    ungranted = _login(world.ungranted_lead)
    assert ungranted.get(f"/clients/{world.client.public_id}/datasets/new/").status_code == 404


def test_forms_require_csrf(world: World) -> None:
    strict = PageClient(enforce_csrf_checks=True)
    strict.force_login(world.lead)
    response = strict.post(f"/clients/{world.client.public_id}/datasets/new/", {"name": "x"})
    assert response.status_code == 403


def test_durations_read_as_people_write_them(world: World) -> None:
    from datetime import timedelta

    from agencyops.templatetags.agencyops_tags import human_duration

    assert human_duration(timedelta(hours=24)) == "1 d"
    assert human_duration(timedelta(hours=36, minutes=5)) == "1 d 12 h 5 min"
    assert human_duration(timedelta(minutes=0)) == "0 min"
    page = _login(world.lead).get(f"/datasets/{world.dataset.public_id}/").content.decode()
    assert "1 d" in page
    assert "8 h" in page
