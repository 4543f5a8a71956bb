"""Evidence and certificates people can read and file: words instead of codes and ISO stamps,
figures that count the rows, the signed JSON downloads that verify, offline PDFs carrying the
signed JSON's sha256, and the procurement token holder's way in (a form or a header)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client as PageClient
from django.urls import reverse
from django.utils import timezone

from clients import services as clients_services
from clients.models import Dataset, LifecycleState
from lifecycle import services
from lifecycle.models import AccessEvent, PendingAccessEvent
from lifecycle.pages.common import GRANT_SESSION_KEY, offline_url_fetcher
from tests.backups.conftest import agency, new_agency
from tests.factories import DeletionRequestFactory
from tests.lifecycle.pages_support import Desk, desk
from tests.s3server import s3_endpoint

__all__ = ["agency", "desk", "new_agency", "s3_endpoint"]

ISO_WITH_MICROSECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+")


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


def _evidence_reads(client: Any) -> int:
    pending = PendingAccessEvent.objects.filter(payload__action="evidence_read").count()
    return pending + AccessEvent.objects.filter(action="evidence_read", client=client).count()


def _token(desk: Desk, client: Any = None, days: int = 5) -> tuple[Any, str]:
    return services.evidence_token_issue(
        actor=desk.agency.actor,
        client=client or desk.agency.client,
        name="ACME procurement",
        expires_at=timezone.now() + dt.timedelta(days=days),
    )


def _public_key(desk: Desk) -> str:
    return services.signing_key_ensure(desk.agency.org).public_key


def test_the_evidence_page_reads_in_words_and_its_figures_count_its_rows(desk: Desk) -> None:
    gone = desk.agency.dataset("Old export")
    Dataset.objects.filter(pk=gone.pk).update(lifecycle_state=LifecycleState.DELETED)
    page = desk.page(desk.agency.admin)
    html = page.get(reverse("client-evidence-page", args=[desk.agency.client.public_id])).content
    text = html.decode()
    assert not ISO_WITH_MICROSECONDS.search(text)
    assert "raw_client_data" not in text
    assert "Raw client data" in text
    rows = text[text.index('id="evidence-inventory"') :]
    rows = rows[: rows.index("</table>")]
    shown = rows.count("<tr>") - 1  # the header row
    assert shown == 2
    figure = re.search(r'id="fig-datasets".*?tile-value">(\d+)<', text, re.S)
    assert figure is not None
    assert int(figure.group(1)) == shown
    assert "1 live · 1 deleted" in text
    assert " s</td>" not in text  # no "7862400 s"
    assert "Download signed JSON" in text


def test_the_evidence_json_verifies_and_is_an_access_event(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    before = _evidence_reads(desk.agency.client)
    got = page.get(reverse("client-evidence-json", args=[desk.agency.client.public_id]))
    assert got.status_code == 200
    assert got["Content-Disposition"].startswith("attachment;")
    ok, why = services.evidence_verify(got.content, public_key=_public_key(desk))
    assert ok, why
    assert _evidence_reads(desk.agency.client) == before + 1


def test_the_evidence_pdf_carries_the_sha256_and_how_to_verify(desk: Desk, caplog: Any) -> None:
    page = desk.page(desk.agency.admin)
    before = _evidence_reads(desk.agency.client)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        got = page.get(reverse("client-evidence-pdf", args=[desk.agency.client.public_id]))
    # The stylesheets came from disk (WeasyPrint read them: it comments on their rules) and
    # nothing failed to load.
    weasy = [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")]
    assert any("Ignored" in m or "unsupported" in m for m in weasy), weasy
    assert not [m for m in weasy if "load" in m.lower() or "fetch" in m.lower()], weasy
    assert got.status_code == 200
    assert got["Content-Type"] == "application/pdf"
    pdf = got.content
    assert pdf.startswith(b"%PDF")
    found = re.search(rb"/Keywords \(sha256:([0-9a-f]{64})\)", pdf)
    assert found is not None
    sha = found.group(1).decode()
    # The signed JSON embedded in the PDF is the file that hash names, and it verifies.
    start = pdf.index(b'{"document":')
    embedded = pdf[start : pdf.index(b"}\n", start) + 2]
    assert hashlib.sha256(embedded).hexdigest() == sha
    assert services.evidence_verify(embedded, public_key=_public_key(desk))[0]
    assert _evidence_reads(desk.agency.client) == before + 1  # the page's own event


def test_the_pdf_paragraph_names_the_verify_command(desk: Desk, rf: Any) -> None:
    page = desk.page(desk.agency.admin)
    html = page.get(reverse("client-evidence-page", args=[desk.agency.client.public_id]))
    text = html.content.decode()
    assert "manage.py verify_evidence evidence.json --key-url" in text
    assert 'id="file-sha256"' in text


def test_the_pdf_renderer_fetches_nothing_but_static_files() -> None:
    with pytest.raises(ValueError, match="not fetched"):
        offline_url_fetcher("https://example.com/x.css")
    with pytest.raises(ValueError, match="not fetched"):
        offline_url_fetcher("http://testserver/static/../../etc/passwd")
    served = offline_url_fetcher("http://testserver/static/agencyops/lifecycle.css")
    assert b"hold-banner" in served["string"]


def _certified(desk: Desk) -> Any:
    request = DeletionRequestFactory(client=desk.agency.client, dataset=desk.dataset)
    return request, services.deletion_certificate_issue(request)


def test_the_certificate_page_json_and_pdf(desk: Desk) -> None:
    request, certificate = _certified(desk)
    page = desk.page(desk.agency.admin)
    html = page.get(reverse("deletion-certificate-page", args=[request.public_id])).content
    text = html.decode()
    assert not ISO_WITH_MICROSECONDS.search(text.split('id="certificate-json"')[0])
    assert 'id="certificate-copies"' in text
    assert "<caption>" in text
    assert "Download signed JSON" in text
    got = page.get(reverse("deletion-certificate-json", args=[request.public_id]))
    assert got["Content-Disposition"].startswith("attachment;")
    assert got.content == services.certificate_file_bytes(certificate)
    assert services.certificate_verify(got.content, public_key=_public_key(desk))[0]
    pdf = page.get(reverse("deletion-certificate-pdf", args=[request.public_id])).content
    assert pdf.startswith(b"%PDF")
    assert f"sha256:{hashlib.sha256(got.content).hexdigest()}".encode() in pdf


def test_another_organization_gets_404_everywhere(desk: Desk, new_agency: Any) -> None:
    request, _ = _certified(desk)
    other = desk.page(new_agency("stranger").admin)
    client_id = desk.agency.client.public_id
    for url in (
        reverse("client-evidence-page", args=[client_id]),
        reverse("client-evidence-json", args=[client_id]),
        reverse("client-evidence-pdf", args=[client_id]),
        reverse("deletion-certificate-page", args=[request.public_id]),
        reverse("deletion-certificate-json", args=[request.public_id]),
        reverse("deletion-certificate-pdf", args=[request.public_id]),
    ):
        assert other.get(url).status_code == 404, url


# --- the procurement token holder ---


def test_the_token_holder_opens_their_clients_evidence_and_nothing_else(desk: Desk) -> None:
    other_client = clients_services.client_create(actor=desk.agency.actor, name="Other client")
    token, raw = _token(desk)
    holder = PageClient()
    form = holder.get(reverse("evidence-open"))
    assert form.status_code == 200
    opened = holder.post(reverse("evidence-open"), {"token": raw})
    evidence_url = reverse("client-evidence-page", args=[desk.agency.client.public_id])
    assert opened.status_code == 302
    assert opened["Location"] == evidence_url
    assert raw not in opened["Location"]
    grant = holder.session[GRANT_SESSION_KEY]
    assert grant["token"] == str(token.public_id)
    assert raw not in str(dict(holder.session.items()))
    page = holder.get(evidence_url)
    assert page.status_code == 200
    assert desk.agency.client.name in page.content.decode()
    pdf = holder.get(reverse("client-evidence-pdf", args=[desk.agency.client.public_id]))
    assert pdf.content.startswith(b"%PDF")
    assert (
        holder.get(reverse("client-evidence-json", args=[desk.agency.client.public_id])).status_code
        == 200
    )
    # Another client's evidence, and every other page, ask for a login.
    elsewhere = holder.get(reverse("client-evidence-page", args=[other_client.public_id]))
    assert elsewhere.status_code == 302
    assert elsewhere["Location"].startswith(reverse("login"))
    assert (
        holder.get(reverse("client-detail", args=[desk.agency.client.public_id])).status_code == 302
    )
    # A revoked token ends the grant at once.
    services.evidence_token_revoke(actor=desk.agency.actor, token=token)
    assert holder.get(evidence_url).status_code == 302


def test_the_grant_is_short_lived(desk: Desk) -> None:
    _, raw = _token(desk)
    holder = PageClient()
    holder.post(reverse("evidence-open"), {"token": raw})
    session = holder.session
    session[GRANT_SESSION_KEY] = {**session[GRANT_SESSION_KEY], "until": 0}
    session.save()
    evidence_url = reverse("client-evidence-page", args=[desk.agency.client.public_id])
    assert holder.get(evidence_url).status_code == 302


def test_wrong_expired_and_revoked_tokens_are_refused_and_throttled(
    desk: Desk, settings: Any
) -> None:
    settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT = 3
    token, raw = _token(desk)
    services.evidence_token_revoke(actor=desk.agency.actor, token=token)
    holder = PageClient()
    url = reverse("evidence-open")
    for attempt in ("aop_wrong", raw, "nothing like a token"):
        refused = holder.post(url, {"token": attempt})
        assert refused.status_code == 400
        assert "wrong, expired or revoked" in refused.content.decode()
        assert attempt not in refused.content.decode()  # never shown back
    _, good = _token(desk)
    throttled = holder.post(url, {"token": good})
    assert throttled.status_code == 429
    assert "Too many wrong tokens" in throttled.content.decode()
    assert GRANT_SESSION_KEY not in holder.session


def test_the_bearer_header_opens_the_page_and_pdf_for_its_client_only(desk: Desk) -> None:
    other_client = clients_services.client_create(actor=desk.agency.actor, name="Other client")
    _, raw = _token(desk)
    holder = PageClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client_id = desk.agency.client.public_id
    assert holder.get(reverse("client-evidence-page", args=[client_id])).status_code == 200
    assert holder.get(reverse("client-evidence-pdf", args=[client_id])).content.startswith(b"%PDF")
    assert (
        holder.get(reverse("client-evidence-page", args=[other_client.public_id])).status_code
        == 404
    )
    bad = PageClient(HTTP_AUTHORIZATION="Bearer aop_not-a-token")
    assert bad.get(reverse("client-evidence-page", args=[client_id])).status_code == 401


def test_members_may_not_read_evidence(desk: Desk) -> None:
    clients_services.grant_create(
        actor=desk.agency.actor,
        grantee=desk.member,
        client=desk.agency.client,
        permission="restore",
        reason="member",
    )
    url = reverse("client-evidence-pdf", args=[desk.agency.client.public_id])
    assert desk.page(desk.member).get(url).status_code == 403
