"""What the lifecycle pages share: service refusals shown on the form that was sent, the
token holder's way into the evidence pages, and PDFs rendered offline from the pages'
templates."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone

from kernel.pages import page_as, tenant_page
from kernel.tenancy import Actor
from lifecycle import services
from lifecycle.services.evidence import PROCUREMENT_TOKEN_PREFIX

# --- forms ---


def choices_of(rows: Any, label: Callable[[Any], str] = str) -> list[tuple[str, str]]:
    return [(str(row.public_id), label(row)) for row in rows]


# --- the procurement token holder on the evidence pages ---

# The session key of a token holder's grant: {"token": <token id>, "client": <client id>,
# "until": <epoch seconds>}. The token's id, never its secret.
GRANT_SESSION_KEY = "procurement_grant"
GRANT_LIFETIME = timedelta(minutes=30)


def procurement_grant_store(request: HttpRequest, token: Any) -> None:
    """A short-lived grant for the token's one client, in this browser's session only."""
    request.session.cycle_key()  # a new session id for the elevated session
    request.session[GRANT_SESSION_KEY] = {
        "token": str(token.public_id),
        "client": str(token.client.public_id),
        "until": (timezone.now() + GRANT_LIFETIME).timestamp(),
    }


def _bearer_secret(request: HttpRequest) -> str | None:
    header = str(request.META.get("HTTP_AUTHORIZATION", ""))
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def _token_actor(request: HttpRequest, client_id: UUID) -> Actor | HttpResponse | None:
    """The actor of a procurement token presented with this request (the Authorization
    header) or granted to this session for this very client; None when there is none (the
    page asks for a login); a refusal page for a header token that is not live."""
    secret = _bearer_secret(request)
    if secret is not None and secret.startswith(PROCUREMENT_TOKEN_PREFIX):
        token = services.evidence_token_authenticate(secret)
        if token is None:
            return render(
                request,
                "error.html",
                {"title": "Token refused", "message": "Invalid, expired or revoked token."},
                status=401,
            )
        return Actor.procurement(token)
    grant = request.session.get(GRANT_SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(grant, dict) or grant.get("client") != str(client_id):
        return None
    if float(grant.get("until", 0)) <= timezone.now().timestamp():
        request.session.pop(GRANT_SESSION_KEY, None)
        return None
    token = services.evidence_token_grant_get(str(grant.get("token", "")))
    if token is None:  # revoked or expired since: the grant ends with it
        request.session.pop(GRANT_SESSION_KEY, None)
        return None
    return Actor.procurement(token)


def evidence_reader_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`tenant_page` for a signed-in user; for a procurement token (in the Authorization
    header, or granted to this session by the token form) the same view with the token's
    actor, for the token's own client only (any other answers 404 through the selector)."""
    as_user = tenant_page(view)

    @wraps(view)
    def wrapper(request: HttpRequest, client_id: UUID) -> HttpResponse:
        if request.user.is_authenticated and _bearer_secret(request) is None:
            return as_user(request, client_id)
        found = _token_actor(request, client_id)
        if found is None:
            return as_user(request, client_id)
        if isinstance(found, HttpResponse):
            return found
        return page_as(found, view, request, client_id)

    return wrapper


# --- PDFs, offline ---


class OfflineFetchRefused(ValueError):
    """WeasyPrint asked for something that is not one of this site's static files."""


def _static_file(url: str) -> Path | None:
    """The file on disk a `/static/…` URL of this site names, found as runserver finds it."""
    path = urlsplit(url).path
    prefix = "/" + settings.STATIC_URL.lstrip("/")
    if not path.startswith(prefix):
        return None
    relative = path[len(prefix) :]
    if not relative or ".." in Path(relative).parts:
        return None
    found = finders.find(relative)
    if isinstance(found, list):
        found = found[0] if found else None
    if found:
        return Path(found)
    candidate = Path(settings.STATIC_ROOT) / relative
    return candidate if candidate.is_file() else None


def offline_url_fetcher(url: str) -> dict[str, Any]:
    """What WeasyPrint may read while rendering: this site's static files, from disk. Every
    other URL (another host, a path outside the static files, the network at all) is
    refused, so a PDF renders the same offline and nothing in a page can make it fetch."""
    found = _static_file(url)
    if found is None:
        raise OfflineFetchRefused(f"not fetched (offline rendering): {url}")
    mime, _ = mimetypes.guess_type(found.name)
    return {"string": found.read_bytes(), "mime_type": mime or "application/octet-stream"}


def _offline_fetcher() -> Any:
    """WeasyPrint's fetcher class answering through `offline_url_fetcher` only."""
    from weasyprint.urls import (  # type: ignore[import-untyped]  # no stubs
        URLFetcher,
        URLFetcherResponse,
    )

    class OfflineURLFetcher(URLFetcher):  # type: ignore[misc]  # an untyped base
        def fetch(self, url: str, headers: Any = None) -> Any:
            resource = offline_url_fetcher(url)
            return URLFetcherResponse(
                url, resource["string"], {"Content-Type": resource["mime_type"]}
            )

    return OfflineURLFetcher()


def pdf_response(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    filename: str,
    attachment: tuple[str, bytes] | None = None,
) -> HttpResponse:
    """The page's own template in its print variant, rendered to a PDF with WeasyPrint, with
    nothing fetched from anywhere but this site's static files. The PDF is written with
    uncompressed objects, so its metadata (the signed JSON's sha256 in Keywords) is readable
    as text, and it carries the signed JSON itself as an embedded file. WeasyPrint is imported
    here, so a machine without its system libraries still serves every other page."""
    import weasyprint  # type: ignore[import-untyped]  # no stubs; imported here on purpose

    html = render_to_string(template, {**context, "pdf": True}, request=request)
    document = weasyprint.HTML(
        string=html, base_url=request.build_absolute_uri("/"), url_fetcher=_offline_fetcher()
    )
    attachments = []
    if attachment is not None:
        name, body = attachment
        attachments.append(weasyprint.Attachment(string=body, name=name, base_url="."))
    pdf = document.write_pdf(attachments=attachments, uncompressed_pdf=True)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def file_response(body: bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def generated_at(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
