"""Deletion certificates: canonical JSON, its sha256, an Ed25519 signature by the
organization's signing key (private half sealed under the master key)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from kernel.exceptions import Conflict
from lifecycle.models import (
    DeletionCertificate,
    DeletionDecision,
    DeletionItem,
    DeletionRequest,
    DeletionState,
)
from lifecycle.services.deletion import request_datasets
from lifecycle.services.deletion.plan import copies_described
from lifecycle.services.signing import (
    ALGORITHM,
    canonical_json,
    sign,
    signature_verify,
    signing_key_ensure,
)

__all__ = [
    "ALGORITHM",
    "canonical_json",
    "certificate_document",
    "certificate_envelope",
    "certificate_file_bytes",
    "certificate_verify",
    "deletion_certificate_issue",
    "signing_key_ensure",
]

ENVELOPE_FIELDS = frozenset({"certificate", "sha256", "signature", "algorithm", "public_key"})
TOOL = "AgencyOps"
TOOL_VERSION = "0.4.0"
STATEMENT = (
    "Every object version and delete marker under the listed prefixes (the primary copies, every "
    "backup target's repository, and every folder AgencyOps' own restores wrote) was deleted "
    "with batched multi-object deletes, the dataset keys were destroyed in the database and on "
    "every target, and a fresh listing of every prefix (all versions) found nothing but the "
    "versions listed as retained by object lock: a backup repository's cannot be decrypted "
    "because every copy of their key was destroyed (on a locked target the key's copy is "
    "wrapped by a key that only the database held); a primary or restored copy's stay readable "
    "until their lock ends, are marked readable, and are deleted then. Copies handed out "
    "(files downloaded, the operator's restores into directories) are listed: AgencyOps "
    "cannot recall them. Restore drills' scratch folders are listed with "
    "their removal."
)
# Copies no deletion can recall: files handed out, the operator's restores into directories,
# repositories pushed to a git host.
HANDED_OUT = ("download", "directory", "pushed")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _location_entry(item: DeletionItem, verification: dict[str, Any]) -> dict[str, Any]:
    """One deleted prefix: where, what was found and deleted, what object lock retained and
    whether verification found it readable (unknown counts as readable: fail closed)."""
    loc = item.location
    checked: dict[str, Any] = next(
        (
            e
            for e in verification.get("locations", [])
            if e.get("prefix") == item.prefix and e.get("location") == loc.name
        ),
        {},
    )
    readable = {
        (r["key"], r["version_id"]): bool(r.get("readable", True))
        for r in checked.get("retained_by_lock", [])
    }
    statuses = {
        (r["key"], r["version_id"]): str(r.get("status", ""))
        for r in checked.get("retained_by_lock", [])
    }
    return {
        "location": str(loc.public_id),
        "name": loc.name,
        "provider": loc.provider,
        "region": loc.region,
        "bucket": loc.bucket,
        "prefix": item.prefix,
        "role": item.role,
        "objects_found": item.objects_found,
        "versions_found": item.versions_found,
        "delete_markers_found": item.delete_markers_found,
        "bytes_found": item.bytes_found,
        "versions_deleted": item.versions_deleted,
        "retained_under_lock": [
            {
                "key": r["key"],
                "version_id": r["version_id"],
                "retained_until": r["retain_until"],
                "readable": readable.get((r["key"], r["version_id"]), True),
                "status": statuses.get((r["key"], r["version_id"]), ""),
            }
            for r in item.retained
        ],
    }


def _datasets_listed(request: DeletionRequest) -> list[dict[str, Any]]:
    return [
        {
            "id": d["id"],
            "name": d["name"],
            "kind": d["kind"],
            "classification": d["classification"],
            "contains_personal_data": d["contains_personal_data"],
        }
        for d in request.plan.get("datasets", [])
    ]


def _keys_section(request: DeletionRequest) -> dict[str, Any]:
    verification = request.verification
    return {
        "destroyed_at": _iso(request.keys_destroyed_at),
        "database_copy_destroyed": verification.get("database_keys_destroyed", False),
        "target_key_objects_deleted": not any(
            e.get("key_readable") for e in verification.get("locations", [])
        ),
    }


def _verification_section(request: DeletionRequest, retained_any: bool) -> dict[str, Any]:
    verification = request.verification
    return {
        "method": "re-listed every prefix with all versions and delete markers; "
        "opened the key copies; tried to decrypt a retained chunk",
        "result": "passed" if verification.get("ok") else "failed",
        "versions_remaining": sum(
            e["versions_remaining"] for e in verification.get("locations", [])
        ),
        "retained_under_lock": retained_any,
    }


def _copies_section(request: DeletionRequest) -> dict[str, Any]:
    copies = copies_described(request_datasets(request))
    return {
        "restored_into_locations": [c for c in copies if c["kind"] == "restore"],
        "restored_into_databases": [c for c in copies if c["kind"] == "database"],
        "handed_out": [c for c in copies if c["kind"] in HANDED_OUT],
        "drill_scratch": [c for c in copies if c["kind"] == "drill"],
        "mirror_caches": [c for c in copies if c["kind"] == "mirror"],
    }


def certificate_document(request: DeletionRequest) -> dict[str, Any]:
    """What the certificate states, from the request, its items and its verification."""
    items = list(request.items.select_related("location").order_by("pk"))
    approvals = list(
        request.approvals.filter(decision=DeletionDecision.APPROVE).select_related("decided_by")
    )
    copies = _copies_section(request)
    return {
        "type": "agencyops.deletion-certificate/v1",
        "certificate_id": None,  # filled by the issuer
        "organization": {
            "id": str(request.organization.public_id),
            "name": request.organization.name,
        },
        "client": {"id": str(request.client.public_id), "name": request.client.name},
        "engagement": (
            {"id": str(request.engagement.public_id), "name": request.engagement.name}
            if request.engagement is not None
            else None
        ),
        "scope": request.scope,
        "reason": request.reason,
        "datasets": _datasets_listed(request),
        "locations": [_location_entry(item, request.verification or {}) for item in items],
        "method": "delete all versions + crypto-erase",
        "keys": _keys_section(request),
        "tool": {"name": TOOL, "version": TOOL_VERSION},
        "requested_by": _user(request.requested_by) or "system (obligation due)",
        "requested_at": _iso(request.created_at),
        "approved_by": [
            {
                "user": _user(a.decided_by),
                "at": _iso(a.decided_at),
                "comment": a.comment,
                **({"primary_drop_confirmed": True} if a.primary_drop_confirmed else {}),
            }
            for a in approvals
        ],
        "approved_at": _iso(request.decided_at),
        "executed_at": _iso(request.executed_at),
        "verified_at": _iso(request.verified_at),
        "verification": _verification_section(request, any(item.retained for item in items)),
        "copies": copies,
        # The client's own repository or database server: named, not deleted by AgencyOps.
        "primaries_kept": request.plan.get("primaries_kept", []),
        "primaries_dropped": request.plan.get("primaries_dropped", []),
        "checks": {
            # What each step's check found, as it was recorded then: every legal hold and
            # retention obligation over the scope, with its state at that moment.
            "made": request.checks,
            "obligation": str(request.obligation.public_id)
            if request.obligation is not None
            else None,
        },
        "statement": STATEMENT,
    }


@transaction.atomic
def deletion_certificate_issue(request: DeletionRequest) -> DeletionCertificate:
    """Only after verification: build the document, hash its canonical JSON, sign it."""
    if request.state != DeletionState.VERIFIED:
        raise Conflict("A certificate is issued only after the deletion was verified.")
    existing: DeletionCertificate | None = DeletionCertificate.objects.filter(
        request=request
    ).first()
    if existing is not None:
        return existing
    certificate = DeletionCertificate(organization=request.organization, client=request.client)
    document = certificate_document(request)
    document["certificate_id"] = str(certificate.public_id)
    document["issued_at"] = timezone.now().isoformat()
    canonical = canonical_json(document)
    signature, public_key = sign(request.organization, canonical)
    certificate.request = request
    certificate.document = document
    certificate.sha256 = hashlib.sha256(canonical).hexdigest()
    certificate.signature = signature
    certificate.public_key = public_key
    certificate.issued_at = timezone.now()
    certificate.save()
    return certificate


def certificate_envelope(certificate: DeletionCertificate) -> dict[str, Any]:
    """The saved form: the document, its sha256, the signature and how to check it."""
    return {
        "certificate": certificate.document,
        "sha256": certificate.sha256,
        "signature": certificate.signature,
        "algorithm": ALGORITHM,
        "public_key": certificate.public_key,
    }


def certificate_file_bytes(certificate: DeletionCertificate) -> bytes:
    """The file procurement keeps: canonical JSON of the envelope and a newline."""
    return canonical_json(certificate_envelope(certificate)) + b"\n"


def certificate_verify(raw: bytes, *, public_key: str) -> tuple[bool, str]:
    """Check a saved certificate offline against a pinned key: the organization's key as
    published at /api/v1/signing-key/, never a key the file names (anyone can re-sign an
    edited document with a key of their own and put that key in the file). The file must be
    the canonical form (so any changed byte fails), its sha256 must match, it must name the
    pinned key, and the signature must verify under the pinned key."""
    pinned = public_key.strip() if isinstance(public_key, str) else ""
    if not pinned:
        return False, "no public key pinned: a signature proves nothing without the signer's key"
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, "not valid JSON"
    if not isinstance(envelope, dict) or not isinstance(envelope.get("certificate"), dict):
        return False, "not a certificate envelope"
    if set(envelope) != ENVELOPE_FIELDS or envelope.get("algorithm") != ALGORITHM:
        return False, "not a certificate envelope (unexpected fields or algorithm)"
    if raw.rstrip(b"\n") != canonical_json(envelope):
        return False, "the file is not in canonical form (it was edited)"
    canonical = canonical_json(envelope["certificate"])
    if hashlib.sha256(canonical).hexdigest() != envelope.get("sha256"):
        return False, "sha256 does not match the certificate"
    if envelope.get("public_key") != pinned:
        return False, "signed by another key than the published one"
    if not signature_verify(pinned, str(envelope.get("signature")), canonical):
        return False, "the signature does not verify"
    return True, "the certificate is intact and its signature verifies"
