"""Evidence and certificates people can read and file: the client's evidence page, its
signed JSON and its PDF (for signed-in readers and for the holder of the client's procurement
token), the token holder's form, and each deletion certificate as a page, the signed JSON and
a PDF."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.http import request_origin
from kernel.pages import TenantHttpRequest, tenant_page
from lifecycle import selectors, services
from lifecycle.pages.common import (
    evidence_reader_page,
    file_response,
    pdf_response,
    procurement_grant_store,
)
from lifecycle.pages.forms import EvidenceOpenForm

# How a reader checks a PDF's file offline: the README's procedure, with the commands that
# implement it (lifecycle/management/commands/verify_evidence.py, verify_certificate.py).
VERIFY_EVIDENCE = (
    "manage.py verify_evidence evidence.json --key-url https://<host>/api/v1/signing-key/ "
    "(or --public-key <the published key>)"
)
VERIFY_CERTIFICATE = (
    "manage.py verify_certificate certificate.json --key-url https://<host>/api/v1/signing-key/ "
    "(or --public-key <the published key>)"
)


# The certificate's copy groups, in words, in the order the table shows them.
COPY_GROUPS = (
    ("restored_into_locations", "Restored into a storage location (deleted with this request)"),
    ("restored_into_databases", "Restored into a new database (dropped with this request)"),
    ("handed_out", "Handed out (cannot be recalled by AgencyOps)"),
    ("drill_scratch", "Restore drill scratch"),
    ("mirror_caches", "Mirror cache"),
)


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _evidence_context(request: TenantHttpRequest, client_id: UUID, via: str) -> dict[str, Any]:
    """The signed evidence (one access event, naming `via`) and what the page shows of it."""
    actor = request.actor
    client = selectors.evidence_client_get(actor=actor, public_id=client_id)
    signed = services.evidence_read(
        actor=actor, client=client, origin=request_origin(request), via=via
    )
    doc = signed.document
    locations = {loc["id"]: loc for loc in doc["storage_locations"]}
    policies = {p["id"]: p["name"] for p in doc["backup_policies"]}
    # Every per-dataset section lists the datasets in the inventory's order: one row each.
    rows = [
        {
            "d": d,
            "p": p,
            "r": r,
            "k": k,
            "location": locations.get(d["primary_location"], {}).get("name", "?"),
            "policy": policies.get(p["policy"] or ""),
            "rpo": _seconds(d["rpo_seconds"]),
            "rto": _seconds(d["rto_seconds"]),
            "deleted": d["lifecycle_state"] == "deleted",
            "targets": [
                {**t, "name": locations.get(t["location"], {}).get("name", "?")}
                for t in p["targets"]
            ],
            "drill_time": _seconds(r["last_drill"]["measured_seconds"])
            if r["last_drill"]
            else None,
            "restore_time": _seconds(r["last_restore"]["duration_seconds"])
            if r["last_restore"]
            else None,
        }
        for d, p, r, k in zip(
            doc["inventory"],
            doc["protection"],
            doc["restore_tests"],
            doc["encryption"]["keys"],
            strict=True,
        )
    ]
    # The figures on top count the rows the table shows (a deleted dataset is a row too).
    live = [row for row in rows if not row["deleted"]]
    figures = {
        "datasets": len(rows),
        "live": len(live),
        "deleted": len(rows) - len(live),
        "personal": sum(1 for row in rows if row["d"]["contains_personal_data"]),
        "three_two_one_met": sum(1 for row in live if row["p"]["three_two_one"]["met"]),
        "rpo_met": sum(1 for row in live if row["p"]["rpo_met"]),
        "drilled": sum(1 for row in live if row["r"]["drill_within_period"]),
    }
    return {
        "client": client,
        "doc": doc,
        "signature": signed.signature,
        "signed": signed,
        "sha256": hashlib.sha256(signed.raw).hexdigest(),
        "document_sha256": signed.document_sha256,
        "rows": rows,
        "figures": figures,
        "verify_command": VERIFY_EVIDENCE,
        "api_url": f"/api/v1/clients/{client.public_id}/evidence/",
        "token_holder": actor.is_procurement,
    }


@evidence_reader_page
def client_evidence_page(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    """The client's evidence, printable; the same signed document as the API (one access
    event per view). Owners, admins, auditors and leads granted the client; the holder of the
    client's procurement token."""
    context = _evidence_context(request, client_id, "page")
    return render(request, "lifecycle/evidence.html", context)


@evidence_reader_page
def client_evidence_json(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    """The signed evidence file, byte for byte what `manage.py verify_evidence` checks."""
    context = _evidence_context(request, client_id, "json")
    slug = context["doc"]["client"]["slug"]
    return file_response(
        context["signed"].raw, filename=f"evidence-{slug}.json", content_type="application/json"
    )


@evidence_reader_page
def client_evidence_pdf(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    """The evidence page as a PDF, with the signed JSON inside and its sha256 on it."""
    context = _evidence_context(request, client_id, "pdf")
    slug = context["doc"]["client"]["slug"]
    return pdf_response(
        request,
        "lifecycle/evidence.html",
        context,
        filename=f"evidence-{slug}.pdf",
        attachment=(f"evidence-{slug}.json", context["signed"].raw),
    )


@never_cache
@sensitive_post_parameters("token")
def evidence_open(request: HttpRequest) -> HttpResponse:
    """The procurement token holder's way to the printable evidence page: the token pasted
    into this form (a POST body: never in a URL, never logged) grants this browser session
    its client's evidence for a short while (the session keeps the token's id, not the
    secret). Wrong, expired and revoked tokens are refused, and throttled per address."""
    form = EvidenceOpenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                token = services.evidence_token_open(
                    form.cleaned_data["token"],
                    address=request_origin(request).source_ip or "unknown",
                )
            except ApplicationError as error:
                status = form_refusal(form, error)
            else:
                procurement_grant_store(request, token)
                return redirect("client-evidence-page", client_id=token.client.public_id)
    return render(request, "lifecycle/evidence_open.html", {"form": form}, status=status)


# --- deletion certificates ---


def _certificate_context(request: TenantHttpRequest, request_id: UUID) -> dict[str, Any]:
    target = selectors.deletion_request_get(actor=request.actor, public_id=request_id)
    certificate = getattr(target, "certificate", None)
    if certificate is None:
        raise Http404
    raw = services.certificate_file_bytes(certificate)
    doc = certificate.document
    copies = doc.get("copies", {})
    return {
        "req": target,
        "certificate": certificate,
        "doc": doc,
        "raw": raw.decode(),
        # Readable: indented. The file to verify is the download, byte for byte.
        "doc_pretty": json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True),
        "raw_bytes": raw,
        "file_sha256": hashlib.sha256(raw).hexdigest(),
        "copy_rows": [
            {**c, "group": label} for group, label in COPY_GROUPS for c in copies.get(group, [])
        ],
        "verify_command": VERIFY_CERTIFICATE,
    }


@tenant_page
def deletion_certificate_page(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    """The certificate, printable, with its sha256 and signature."""
    context = _certificate_context(request, request_id)
    return render(request, "lifecycle/deletion_certificate.html", context)


@tenant_page
def deletion_certificate_json(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    """The exact bytes that were signed around: the file `manage.py verify_certificate`
    checks."""
    context = _certificate_context(request, request_id)
    return file_response(
        context["raw_bytes"],
        filename=f"deletion-certificate-{context['certificate'].public_id}.json",
        content_type="application/json",
    )


@tenant_page
def deletion_certificate_pdf(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    context = _certificate_context(request, request_id)
    name = f"deletion-certificate-{context['certificate'].public_id}"
    return pdf_response(
        request,
        "lifecycle/deletion_certificate.html",
        context,
        filename=f"{name}.pdf",
        attachment=(f"{name}.json", context["raw_bytes"]),
    )
