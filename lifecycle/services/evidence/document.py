"""Procurement evidence: one signed document per client, generated from live data.

What the agency holds of the client, where, how it is protected and backed up (3-2-1 computed
from the snapshots really stored), restore drills and restores against the RTO, encryption and
key custody, who can touch it, the access log's summary and chain verification, obligations,
legal holds, deletion certificates and the Art. 30(2) processing record. The sections are built
in `data`, `protection` and `people`; the shape is `schema.DOCUMENT_SCHEMA`.

The document is built in a fixed number of queries whatever the number of datasets, snapshots
or events. It is signed like certificates (Ed25519 over its canonical JSON), and the signed
envelope is served as canonical JSON, so the saved response is byte for byte what
`evidence_verify` checks: any changed byte fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from backups.services.assurance import protection_status_many
from backups.services.drills import drill_summary_many
from clients.models import Client, Dataset, LifecycleState
from kernel.exceptions import Forbidden, NotFound
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor
from lifecycle.models import AccessAction
from lifecycle.services.access.outbox import access_event_record
from lifecycle.services.evidence import data, people, protection
from lifecycle.services.evidence.schema import DOCUMENT_TYPE, SCHEMA_VERSION
from lifecycle.services.evidence.tokens import actor_event_fields
from lifecycle.services.signing import (
    ALGORITHM,
    canonical_json,
    key_fingerprint,
    sign,
    signature_verify,
)

ENVELOPE_FIELDS = frozenset({"document", "signature"})
SIGNATURE_FIELDS = frozenset({"algorithm", "public_key", "key_id", "value"})

# `canonical_json`'s bytes without its check for cycles: a document built here has none, and
# on a document of a thousand datasets the check is a fifth of the encoding time. The offline
# verification re-encodes with `canonical_json` itself, so the two cannot drift apart unnoticed.
_DOCUMENT_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


# --- who may read it ---


def evidence_read_check(*, actor: Actor, client: Client) -> None:
    """Owners, admins and auditors read any client's evidence; leads a client they hold a
    grant on (the whole client, not one dataset); a procurement token its own client; members
    none. Anything not visible answers 404, a visible client a member may not read 403."""
    if client.organization_id != actor.organization_id:
        raise NotFound()
    if actor.is_procurement:
        if client.pk != actor.procurement_token.client_id:
            raise NotFound()
        return
    if actor.sees_whole_organization:
        return
    if client.pk not in actor.client_levels:
        raise NotFound()
    if actor.role == "member":
        raise Forbidden("Members may not read evidence; ask a project lead or an admin.")


# --- the document ---


def evidence_document(client: Client, *, now: datetime | None = None) -> dict[str, Any]:
    """The evidence of one client as of `now`, from live data, in a fixed number of queries.
    The caller has checked the reader may see it (`evidence_read_check`)."""
    now = now or timezone.now()
    datasets, protections = data.datasets_of(client)
    # What 3-2-1 and the drills read of these datasets, selected by the client rather than by
    # a thousand pks.
    scope = Dataset.objects.filter(client=client)
    statuses = protection_status_many(datasets, now=now, scope=scope)
    drills = drill_summary_many(scope, now=now)
    policy_ids = [p.policy_id for p in protections.values() if p.policy_id is not None]
    targets = data.policy_targets(policy_ids)
    policies, policy_refs = data.policies_section(policy_ids, targets.order, targets.retention)
    locations, findings, location_refs = data.locations_section(
        client, datasets, protections, targets.order, statuses
    )
    certificates = people.certificates_section(client)
    return {
        "type": DOCUMENT_TYPE,
        "schema_version": SCHEMA_VERSION,
        "generated_at": data.iso(now),
        "organization": {
            "id": str(client.organization.public_id),
            "name": client.organization.name,
        },
        "client": data.client_section(client),
        "summary": {
            "datasets": len(datasets),
            "datasets_live": sum(
                1 for d in datasets if d.lifecycle_state != LifecycleState.DELETED
            ),
            "datasets_with_personal_data": sum(1 for d in datasets if d.contains_personal_data),
            "three_two_one_met": sum(1 for s in statuses.values() if s.met),
            "rpo_met": sum(1 for s in statuses.values() if s.rpo_met),
            "drilled_within_period": sum(1 for s in drills.values() if s.within_period),
            "open_posture_findings": findings,
            "deletion_certificates": len(certificates),
        },
        "engagements": data.engagements_section(client),
        "inventory": data.inventory_section(datasets, location_refs),
        "storage_locations": locations,
        "backup_policies": policies,
        "protection": protection.protection_section(
            datasets, protections, policy_refs, location_refs, statuses, now
        ),
        "restore_tests": protection.restore_tests_section(
            datasets, drills, protection.last_restores(client)
        ),
        "encryption": protection.encryption_section(client, datasets, protections),
        "access": people.access_section(client, now),
        "access_summary": people.access_summary_section(client, now),
        "obligations": people.obligations_section(client),
        "legal_holds": people.legal_holds_section(client),
        "deletion_certificates": certificates,
        "processing_record": people.processing_record_section(client, datasets),
    }


@dataclass(frozen=True)
class SignedEvidence:
    """A signed document: `raw` is what is served and saved — the canonical JSON of
    {"document", "signature"} and a newline — serialized once."""

    document: dict[str, Any]
    signature: dict[str, str]
    document_sha256: str
    raw: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        return {"document": self.document, "signature": self.signature}


def evidence_sign(document: Mapping[str, Any], *, organization: Any) -> SignedEvidence:
    """Sign the document's canonical JSON with the organization's Ed25519 key; the signature
    is detached, with the public key and its fingerprint."""
    body = _DOCUMENT_ENCODER.encode(document).encode()
    value, public_key = sign(organization, body)
    signature = {
        "algorithm": ALGORITHM,
        "public_key": public_key,
        "key_id": key_fingerprint(public_key),
        "value": value,
    }
    # The envelope's canonical form, built around the document's bytes instead of serializing
    # the document again: keys sorted ("document" < "signature"), no whitespace.
    raw = b'{"document":' + body + b',"signature":' + canonical_json(signature) + b"}\n"
    return SignedEvidence(dict(document), signature, hashlib.sha256(body).hexdigest(), raw)


def evidence_file_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The saved form of an envelope: its canonical JSON and a newline."""
    return canonical_json(envelope) + b"\n"


def evidence_read(
    *,
    actor: Actor,
    client: Client,
    origin: RequestOrigin = NO_ORIGIN,
    via: str = "api",
    now: datetime | None = None,
) -> SignedEvidence:
    """Read a client's signed evidence: check the reader, build, sign, and record exactly one
    access event (`evidence_read`) naming the reader and the client, with the document's
    sha256 so the log says which document was handed out."""
    evidence_read_check(actor=actor, client=client)
    signed = evidence_sign(evidence_document(client, now=now), organization=client.organization)
    details: dict[str, Any] = {
        "via": via,
        "schema_version": SCHEMA_VERSION,
        "document_sha256": signed.document_sha256,
        "datasets": len(signed.document["inventory"]),
    }
    if actor.is_procurement:
        details["procurement_token"] = str(actor.procurement_token.public_id)
    access_event_record(
        organization=client.organization,
        action=AccessAction.EVIDENCE_READ,
        client=client,
        origin=origin,
        details=details,
        **actor_event_fields(actor),
    )
    return signed


def evidence_verify(raw: bytes, *, public_key: str) -> tuple[bool, str]:
    """Check saved evidence offline against a pinned key: the organization's key as published
    at /api/v1/signing-key/, never the key the signature block names (anyone can re-sign an
    edited document with a key of their own and name that key). The file must be the
    canonical form the API serves (so any changed byte fails), it must name the pinned key and
    its fingerprint, and the signature must verify over the document's canonical JSON under
    the pinned key."""
    pinned = public_key.strip() if isinstance(public_key, str) else ""
    if not pinned:
        return False, "no public key pinned: a signature proves nothing without the signer's key"
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, "not valid JSON"
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_FIELDS:
        return False, "not an evidence document (expected 'document' and 'signature')"
    document, signature = envelope["document"], envelope["signature"]
    if not isinstance(document, dict) or not isinstance(signature, dict):
        return False, "not an evidence document"
    if set(signature) != SIGNATURE_FIELDS or signature.get("algorithm") != ALGORITHM:
        return False, "unexpected signature fields or algorithm"
    canonical = canonical_json(envelope)
    if raw not in (canonical, canonical + b"\n"):
        return False, "the file is not in canonical form (it was edited)"
    if signature.get("public_key") != pinned:
        return False, "signed by another key than the published one"
    if signature.get("key_id") != key_fingerprint(pinned):
        return False, "the key id does not match the public key"
    if not signature_verify(pinned, str(signature.get("value")), canonical_json(document)):
        return False, "the signature does not verify"
    return True, (
        f"the evidence of {document.get('client', {}).get('name', '?')} generated at "
        f"{document.get('generated_at')} is intact and its signature verifies"
    )
