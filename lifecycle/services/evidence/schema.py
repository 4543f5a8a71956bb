"""The evidence document's JSON Schema (draft 2020-12), every field described.

Published at GET /api/v1/evidence/schema/ and, converted to OpenAPI 3.0, in /api/schema/ as the
evidence endpoint's response. Every object is closed (`additionalProperties: false`), so a
field the builder adds without describing it here fails the tests.
"""

from __future__ import annotations

import copy
from typing import Any

from lifecycle.services.evidence.schema_builders import Schema, _arr, _obj, _s, _when
from lifecycle.services.evidence.schema_holdings import (
    CLIENT,
    DATASET,
    ENCRYPTION,
    ENGAGEMENT,
    LOCATION,
    ORGANIZATION,
    POLICY,
    PROTECTION,
    RESTORE_TESTS,
)
from lifecycle.services.evidence.schema_rights import (
    ACCESS,
    ACCESS_SUMMARY,
    CERTIFICATE,
    HOLD,
    OBLIGATION,
    PROCESSING_RECORD,
    SUMMARY,
)

SCHEMA_VERSION = "1.0"
DOCUMENT_TYPE = "agencyops.evidence"
SCHEMA_ID = "https://agencyops.invalid/schemas/evidence/1.0"


DOCUMENT_SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "AgencyOps procurement evidence",
    **_obj(
        "Everything the agency holds of one client, where, how it is protected and backed up, "
        "restore tests, who can touch it and what was deleted — generated from live data.",
        {
            "type": _s("The document type.", const=DOCUMENT_TYPE),
            "schema_version": _s("The version of this schema.", const=SCHEMA_VERSION),
            "generated_at": _when("When the document was generated from live data"),
            "organization": ORGANIZATION,
            "client": CLIENT,
            "summary": SUMMARY,
            "engagements": _arr("The client's engagements.", ENGAGEMENT),
            "inventory": _arr("Every dataset of the client, deleted ones too.", DATASET),
            "storage_locations": _arr(
                "Every location holding a copy: primaries and backup targets.", LOCATION
            ),
            "backup_policies": _arr("The policies the datasets follow.", POLICY),
            "protection": _arr("Per dataset: policy, 3-2-1 and RPO per target.", PROTECTION),
            "restore_tests": _arr("Per dataset: the last drill and restore.", RESTORE_TESTS),
            "encryption": ENCRYPTION,
            "access": ACCESS,
            "access_summary": ACCESS_SUMMARY,
            "obligations": _arr("Retention and deletion obligations.", OBLIGATION),
            "legal_holds": _arr("Legal holds, active and released.", HOLD),
            "deletion_certificates": _arr("Deletions completed and proved.", CERTIFICATE),
            "processing_record": PROCESSING_RECORD,
        },
    ),
}

_SIGNATURE = _obj(
    "The detached signature over the canonical JSON of `document` (sorted keys, no "
    "whitespace, UTF-8).",
    {
        "algorithm": _s("The signature algorithm.", const="Ed25519"),
        "public_key": _s(
            "The organization's raw Ed25519 public key, base64 (compare with GET "
            "/api/v1/signing-key/)."
        ),
        "key_id": _s("sha256 of the raw public key, hex.", pattern="^[0-9a-f]{64}$"),
        "value": _s("The signature, base64."),
    },
)

ENVELOPE_SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID + "/signed",
    "title": "AgencyOps signed procurement evidence",
    **_obj(
        "What GET /api/v1/clients/{id}/evidence/ answers: the document and its signature. "
        "The body is itself canonical JSON: save it unchanged and `manage.py verify_evidence` "
        "checks it offline.",
        {
            "document": {
                key: value
                for key, value in DOCUMENT_SCHEMA.items()
                if key not in ("$schema", "$id")
            },
            "signature": _SIGNATURE,
        },
    ),
}


def _to_openapi(node: Any) -> Any:
    """JSON Schema 2020-12 → OpenAPI 3.0: `type: [t, "null"]` → `nullable`, `const` → a
    one-value enum; `$schema`/`$id` dropped."""
    if isinstance(node, list):
        return [_to_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0]
            if len(kinds) != len(value):
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _to_openapi(sub) for name, sub in value.items()}
        else:
            out[key] = _to_openapi(value)
    return out


def evidence_json_schema() -> Schema:
    """The signed evidence's JSON Schema (what /api/v1/evidence/schema/ publishes)."""
    return copy.deepcopy(ENVELOPE_SCHEMA)


def evidence_openapi_schema() -> Schema:
    """The same schema as an OpenAPI 3.0 schema object, for the endpoint's documentation."""
    converted: Schema = _to_openapi(ENVELOPE_SCHEMA)
    return converted
