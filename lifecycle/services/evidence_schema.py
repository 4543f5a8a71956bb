"""The evidence document's JSON Schema (draft 2020-12), every field described.

Published at GET /api/v1/evidence/schema/ and, converted to OpenAPI 3.0, in /api/schema/ as the
evidence endpoint's response. Every object is closed (`additionalProperties: false`), so a
field the builder adds without describing it here fails the tests.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_VERSION = "1.0"
DOCUMENT_TYPE = "agencyops.evidence"
SCHEMA_ID = "https://agencyops.invalid/schemas/evidence/1.0"

Schema = dict[str, Any]


def _t(kind: str, description: str, *, nullable: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": [kind, "null"] if nullable else kind, "description": description}
    schema.update(extra)
    return schema


def _s(description: str, *, nullable: bool = False, **extra: Any) -> Schema:
    return _t("string", description, nullable=nullable, **extra)


def _uuid(description: str, *, nullable: bool = False) -> Schema:
    return _s(description, nullable=nullable, format="uuid")


def _when(description: str, *, nullable: bool = False) -> Schema:
    return _s(description + " (ISO 8601, UTC).", nullable=nullable, format="date-time")


def _day(description: str, *, nullable: bool = False) -> Schema:
    return _s(description + " (ISO 8601 date).", nullable=nullable, format="date")


def _int(description: str, *, nullable: bool = False) -> Schema:
    return _t("integer", description, nullable=nullable, minimum=0)


def _secs(description: str, *, nullable: bool = False) -> Schema:
    return _int(description + ", in seconds", nullable=nullable)


def _bool(description: str, *, nullable: bool = False) -> Schema:
    return _t("boolean", description, nullable=nullable)


def _enum(description: str, values: list[str], *, nullable: bool = False) -> Schema:
    schema = _s(description, nullable=nullable)
    schema["enum"] = [*values, None] if nullable else list(values)
    return schema


def _obj(description: str, properties: dict[str, Schema], *, nullable: bool = False) -> Schema:
    return {
        "type": ["object", "null"] if nullable else "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _arr(description: str, items: Schema) -> Schema:
    return {"type": "array", "description": description, "items": items}


def _strings(description: str, item: str) -> Schema:
    return _arr(description, _s(item))


DATASET_KINDS = [
    "raw_client_data",
    "processed_data",
    "labeled_training_set",
    "evaluation_set",
    "model_artifact",
    "code_repository",
    "project_docs",
    "business_records",
    "communications_archive",
    "infrastructure_config",
]
CLASSIFICATIONS = ["public", "internal", "confidential", "restricted"]
LIFECYCLE_STATES = ["active", "completed", "archived", "deletion_pending", "deleted"]
RUN_STATES = ["pending", "running", "succeeded", "failed"]
SAFEGUARDS = [
    "adequacy_decision",
    "standard_contractual_clauses",
    "binding_corporate_rules",
    "code_of_conduct",
    "certification",
    "derogation",
]

_ORGANIZATION = _obj(
    "The agency holding the data: the processor.",
    {
        "id": _uuid("The organization's public id."),
        "name": _s("The organization's name."),
    },
)

_CLIENT = _obj(
    "The client this evidence is about: the controller of the data.",
    {
        "id": _uuid("The client's public id (the one in the request URL)."),
        "name": _s("The client's name."),
        "slug": _s("The client's short name."),
        "status": _enum("Where the relationship stands.", ["active", "offboarding", "closed"]),
        "contact_name": _s("The client's contact person, as the agency recorded it."),
        "contact_email": _s("The client's contact e-mail."),
        "contract_reference": _s("The master agreement's reference."),
        "dpa_reference": _s("The data processing agreement's reference."),
        "created_at": _when("When the agency registered the client"),
    },
)

_ENGAGEMENT = _obj(
    "A piece of contracted work; its end starts the deletion clock.",
    {
        "id": _uuid("The engagement's public id."),
        "name": _s("The engagement's name."),
        "status": _enum("Whether the engagement is running or has ended.", ["active", "ended"]),
        "starts_on": _day("First day of the engagement"),
        "ends_on": _day("Last day of the engagement; null while open-ended", nullable=True),
        "deletion_due_days": _int("Days after the end by which its data must be deleted."),
    },
)

_DATASET = _obj(
    "One body of the client's data the agency holds.",
    {
        "id": _uuid("The dataset's public id; other sections refer to datasets by it."),
        "name": _s("The dataset's name."),
        "kind": _enum("What the data is.", DATASET_KINDS),
        "classification": _enum("How sensitive it is.", CLASSIFICATIONS),
        "contains_personal_data": _bool("Whether it holds personal data."),
        "source": _s("Where the data came from."),
        "primary_location": _uuid("The storage location of the primary copy (storage_locations)."),
        "path": _s("Path or key prefix of the primary copy inside that location."),
        "owner": _s("Username responsible for its backups; null if none", nullable=True),
        "engagement": _uuid("The engagement it belongs to; null if none.", nullable=True),
        "lifecycle_state": _enum("Where it is in its life.", LIFECYCLE_STATES),
        "rpo_seconds": _secs(
            "Recovery point objective: most data, in time, the client accepts to lose"
        ),
        "rto_seconds": _secs("Recovery time objective: longest acceptable wait for a restore"),
        "registered_at": _when("When it was registered"),
    },
)

_FINDING = _obj(
    "A protection the location lacks, as the latest audit found.",
    {
        "check": _s("The setting checked (versioning, object_lock, encryption, …)."),
        "severity": _enum("How bad it is.", ["critical", "high", "medium", "low", "info"]),
        "message": _s("What was found, in words."),
    },
)

_POSTURE = _obj(
    "The latest reading of the bucket's protection settings; null for local directories "
    "(not audited) and buckets not audited yet.",
    {
        "audited_at": _when("When the settings were read"),
        "reachable": _bool("Whether the bucket answered."),
        "versioning": _s("Versioning status: Enabled, Suspended or Disabled.", nullable=True),
        "mfa_delete": _s("MFA delete: Enabled or Disabled.", nullable=True),
        "object_lock": _obj(
            "Object lock (write once, read many).",
            {
                "enabled": _bool("Whether object lock is on."),
                "mode": _s(
                    "GOVERNANCE or COMPLIANCE; null if no default retention.", nullable=True
                ),
                "days": _int("Default retention in days.", nullable=True),
                "years": _int("Default retention in years.", nullable=True),
            },
        ),
        "replication_rules": _int("Number of replication rules."),
        "lifecycle_rules": _int("Number of lifecycle (tiering and expiry) rules."),
        "encryption": _s("Default server-side encryption algorithm; null if none.", nullable=True),
        "public_access_blocked": _bool(
            "Whether all four public-access-block settings are on; null if unknown.",
            nullable=True,
        ),
        "logging": _bool("Whether server access logging is on.", nullable=True),
        "findings": _arr("What the audit found lacking; empty when nothing.", _FINDING),
    },
    nullable=True,
)

_LOCATION = _obj(
    "A place the client's data is stored: a primary location or a backup target.",
    {
        "id": _uuid("The location's public id; other sections refer to locations by it."),
        "name": _s("The location's name."),
        "kind": _enum("An S3-compatible bucket or a local directory.", ["s3", "local"]),
        "provider": _s("The storage provider (aws, gcs, backblaze, minio, filesystem, …)."),
        "region": _s("The provider's region; empty for local directories."),
        "medium": _s(
            "The storage family copies on it share a fate with: the provider for buckets, "
            "'filesystem' for local directories (the M of 3-2-1)."
        ),
        "bucket": _s("The bucket; empty for local directories."),
        "prefix": _s("Key prefix inside the bucket, or the directory."),
        "dedicated_to_client": _bool("Whether only this client's data is stored there."),
        "roles": _arr(
            "How this client uses it.",
            _enum("A role.", ["primary", "backup_target"]),
        ),
        "posture": _POSTURE,
    },
)

_POLICY = _obj(
    "A backup policy applied to at least one of the client's datasets.",
    {
        "id": _uuid("The policy's public id."),
        "name": _s("The policy's name."),
        "frequency": _enum(
            "How often it backs up.", ["continuous", "hourly", "daily", "weekly", "monthly"]
        ),
        "time_of_day": _s("UTC start time of daily, weekly and monthly backups (HH:MM)."),
        "retention": _s("What pruning keeps, in words."),
        "keep": _obj(
            "Snapshots kept per bucket of time (-1: all of them).",
            {
                "last": _t("integer", "Most recent snapshots kept."),
                "hourly": _t("integer", "Hours with a snapshot kept."),
                "daily": _t("integer", "Days with a snapshot kept."),
                "weekly": _t("integer", "Weeks with a snapshot kept."),
                "monthly": _t("integer", "Months with a snapshot kept."),
                "yearly": _t("integer", "Years with a snapshot kept."),
                "forever": _bool("Whether no snapshot is ever pruned."),
            },
        ),
        "storage_class": _s("Storage class snapshots are written in."),
        "infrequent_access_after_days": _int(
            "Days before data moves to infrequent access.", nullable=True
        ),
        "archive_after_days": _int("Days before data moves to archive.", nullable=True),
        "drill_every_seconds": _secs(
            "How often each dataset is restored in a drill; null: by hand only", nullable=True
        ),
        "targets": _arr("Backup targets, in order.", _uuid("A location id (storage_locations).")),
    },
)

_RULE = _obj(
    "One rule of 3-2-1.",
    {
        "name": _enum("The rule.", ["copies", "media", "offsite", "history"]),
        "met": _bool("Whether it holds."),
        "reason": _s("Why it holds, or why not, in words."),
    },
)

_TARGET = _obj(
    "The dataset's latest restorable snapshot on one backup target.",
    {
        "location": _uuid("The target (storage_locations)."),
        "last_snapshot_at": _when("When its newest complete snapshot was taken", nullable=True),
        "age_seconds": _secs("How old that snapshot was when generated_at", nullable=True),
        "fresh": _bool("Whether it is at most the RPO old."),
        "restorable_snapshots": _int("Complete snapshots kept there."),
    },
)

_PROTECTION = _obj(
    "How one dataset is backed up, and whether 3-2-1 holds — computed from the snapshots "
    "really stored, not declared.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "policy": _uuid("Its backup policy (backup_policies); null if none.", nullable=True),
        "pruning_suspended": _bool("Whether pruning is suspended (a legal hold covers it)."),
        "three_two_one": _obj(
            "3 copies, on 2 media, 1 offsite, plus version history.",
            {
                "met": _bool("Whether every rule holds."),
                "retired": _bool("Deleted or pending deletion: reported, never failed."),
                "copies": _int(
                    "Copies counted: the primary and each target with a fresh snapshot."
                ),
                "media": _int("Distinct storage families among the counted copies."),
                "offsite": _bool("Whether a counted copy is with another provider or region."),
                "history": _bool("Whether versions or at least two snapshots are kept."),
                "reasons": _strings("Why it fails; empty when met.", "A failing rule's reason."),
                "rules": _arr("Each rule with its reason.", _RULE),
            },
        ),
        "rpo_seconds": _secs("The dataset's RPO"),
        "last_good_at": _when("Newest restorable snapshot on any target", nullable=True),
        "rpo_met": _bool("Whether that snapshot is at most the RPO old."),
        "targets": _arr("The policy's targets with their latest snapshot.", _TARGET),
    },
)

_DRILL = _obj(
    "The last finished restore drill: a full restore into scratch space, every file checked.",
    {
        "id": _uuid("The drill's public id."),
        "status": _enum("How it ended.", RUN_STATES),
        "started_at": _when("When the restore started", nullable=True),
        "finished_at": _when("When the restored copy was verified", nullable=True),
        "snapshot_taken_at": _when("When the restored snapshot was taken"),
        "measured_seconds": _secs("Time to a verified copy", nullable=True),
        "rto_seconds": _secs("The RTO it was measured against", nullable=True),
        "rto_met": _bool("Whether it finished within the RTO.", nullable=True),
        "recovery_point_age_seconds": _secs("How old the restored snapshot was", nullable=True),
        "rpo_met": _bool("Whether that age was within the RPO.", nullable=True),
        "files_verified": _int("Files re-read and matched against the manifest (sha256)."),
        "issues": _strings("What went wrong; empty when nothing.", "An issue."),
        "reviewed_by": _s("Who reviewed the result; null if nobody yet.", nullable=True),
        "reviewed_at": _when("When it was reviewed", nullable=True),
    },
    nullable=True,
)

_RESTORE = _obj(
    "The last restore someone asked for (not a drill).",
    {
        "id": _uuid("The restore's public id."),
        "status": _enum("Where it stands.", RUN_STATES),
        "requested_by": _s("Who asked for it; null for the system.", nullable=True),
        "requested_at": _when("When it was asked for"),
        "finished_at": _when("When it finished", nullable=True),
        "duration_seconds": _secs("How long it ran", nullable=True),
        "rto_met": _bool(
            "Whether it succeeded within the dataset's RTO; null while unfinished.", nullable=True
        ),
        "files": _int("Files restored."),
        "bytes": _int("Bytes restored."),
    },
    nullable=True,
)

_RESTORE_TESTS = _obj(
    "Restore drills and restores of one dataset, measured against its RTO.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "rto_seconds": _secs("The dataset's RTO"),
        "drill_within_period": _bool(
            "Whether a drill succeeded within the drill period (the policy's, else 91 days)."
        ),
        "next_drill_due_at": _when(
            "When the next scheduled drill is due; null: drills by hand only", nullable=True
        ),
        "last_drill": _DRILL,
        "last_restore": _RESTORE,
    },
)

_KEY = _obj(
    "The dataset's own data key.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "state": _enum(
            "active: the key exists, wrapped; destroyed: crypto-shredded, every copy unreadable; "
            "none: nothing backed up yet.",
            ["active", "destroyed", "none"],
        ),
        "key_id": _s(
            "First 16 hex digits of the sha256 of the wrapped key: differs per dataset; null "
            "once destroyed or before the first backup.",
            nullable=True,
        ),
        "destroyed_at": _when("When the key was destroyed", nullable=True),
    },
)

_ENCRYPTION = _obj(
    "How backups are encrypted and who holds the keys.",
    {
        "algorithm": _s("Cipher of chunks and manifests."),
        "chunk_addressing": _s("How chunks are named without leaking content across datasets."),
        "key_wrapping": _s("How each dataset key is protected at rest."),
        "key_custody": _obj(
            "Who holds the key that unlocks the dataset keys.",
            {
                "holder": _s("The organization holding the master key."),
                "master_key_source": _enum(
                    "Where the master key is configured.", ["environment", "file"]
                ),
                "description": _s("Key custody, in words."),
            },
        ),
        "keys": _arr("One entry per dataset: one key each.", _KEY),
    },
)

_GRANT = _obj(
    "A current grant on the client or one of its datasets.",
    {
        "id": _uuid("The grant's public id."),
        "grantee": _s("The username holding it."),
        "scope": _enum("The whole client, or one dataset.", ["client", "dataset"]),
        "dataset": _uuid("The dataset, for a dataset grant.", nullable=True),
        "permission": _enum(
            "view: read; restore: view, restore and download; manage: restore, register "
            "datasets and request deletion.",
            ["view", "restore", "manage"],
        ),
        "reason": _s("Why it was granted."),
        "granted_by": _s("Who granted it; null for the system.", nullable=True),
        "granted_at": _when("When it was granted"),
        "expires_at": _when("When it stops working"),
    },
)

_ACCESS = _obj(
    "Who can touch the client's data now.",
    {
        "grants": _arr("Live grants (not revoked, not expired).", _GRANT),
        "organization_wide": _arr(
            "People whose role reaches every client of the organization.",
            _obj(
                "A member whose role sees every client.",
                {
                    "username": _s("The member."),
                    "role": _enum(
                        "owner/admin: manage and restore; auditor: read only.",
                        ["owner", "admin", "auditor"],
                    ),
                },
            ),
        ),
        "procurement_tokens": _arr(
            "Live procurement tokens that read this evidence.",
            _obj(
                "A read-only procurement token of this client.",
                {
                    "id": _uuid("The token's public id (the access log names it)."),
                    "name": _s("Who holds it."),
                    "created_at": _when("When it was issued"),
                    "expires_at": _when("When it stops working"),
                    "last_used_at": _when("When it was last used", nullable=True),
                },
            ),
        ),
    },
)

_CHAIN = _obj(
    "Verification of the organization's hash-chained access log.",
    {
        "ok": _bool("Whether every link checked verifies."),
        "events": _int("Events in the organization's chain (its head)."),
        "verified_from": _int(
            "First event checked by this read: 1 for a whole walk, else the last event known "
            "good (its hash must still match)."
        ),
        "walked_at": _when("When the whole chain was last walked and found intact", nullable=True),
        "broken_at": _int("First broken link, if any.", nullable=True),
        "reason": _s("What is wrong at that link; empty when ok."),
    },
)

_ACCESS_SUMMARY = _obj(
    "Accesses to the client's data, from the access log.",
    {
        "total_events": _int("Events about this client."),
        "by_month": _arr(
            "Events per month, actor and action.",
            _obj(
                "A count of events.",
                {
                    "month": _s("The month, YYYY-MM (UTC).", pattern=r"^\d{4}-\d{2}$"),
                    "actor": _s("Who: a username, token id, 'system' or 'storage:<principal>'."),
                    "actor_kind": _enum(
                        "What kind of actor.",
                        ["user", "api_token", "procurement_token", "system", "storage"],
                    ),
                    "action": _s("What: view_dataset, download, restore, evidence_read, grant, …"),
                    "events": _int("How many."),
                },
            ),
        ),
        "chain": _CHAIN,
    },
)

_OBLIGATION = _obj(
    "What a contract, DPA or regulation says about keeping or deleting data.",
    {
        "id": _uuid("The obligation's public id."),
        "kind": _enum(
            "Delete N days after the engagement, retain until a date, or retain for N years.",
            ["delete_after_engagement", "retain_until", "retain_for"],
        ),
        "engagement": _uuid("The engagement it covers, if scoped to one.", nullable=True),
        "dataset": _uuid("The dataset it covers, if scoped to one.", nullable=True),
        "source": _enum("Where it comes from.", ["contract", "dpa", "regulation"]),
        "source_reference": _s("Clause, DPA section or regulation article."),
        "days_after_end": _int("Days after the engagement ends.", nullable=True),
        "retain_until": _day("Retain until this day", nullable=True),
        "retain_years": _int("Retain for this many years.", nullable=True),
        "due_on": _day(
            "Deletion due (delete kind) or retention end (retain kinds); null until known",
            nullable=True,
        ),
    },
)

_HOLD = _obj(
    "A legal hold: while active nothing in its scope is deleted or pruned.",
    {
        "id": _uuid("The hold's public id."),
        "dataset": _uuid("The dataset it covers; null: the whole client.", nullable=True),
        "reason": _s("Why."),
        "active": _bool("Whether it is in force."),
        "placed_at": _when("When it was placed"),
        "released_at": _when("When it was released", nullable=True),
    },
)

_CERTIFICATE = _obj(
    "A signed deletion certificate: what was deleted everywhere, verified by listing again.",
    {
        "id": _uuid("The certificate's public id."),
        "deletion_request": _uuid("The deletion request it proves."),
        "scope": _enum("What was deleted.", ["client", "engagement", "dataset"]),
        "issued_at": _when("When it was issued"),
        "datasets": _arr(
            "The datasets deleted.",
            _obj(
                "A deleted dataset.",
                {"id": _uuid("The dataset's public id."), "name": _s("Its name.")},
            ),
        ),
        "verification": _enum("What the verification listing found.", ["passed", "failed"]),
        "versions_remaining": _int("Object versions a fresh listing still found."),
        "sha256": _s("sha256 of the certificate's canonical JSON.", pattern="^[0-9a-f]{64}$"),
        "signature": _s("Its Ed25519 signature, base64."),
        "url": _s("Where the whole signed certificate is read (a procurement token may)."),
    },
)

_PARTY = {
    "name": _s("Name."),
    "contact": _s("Contact details."),
    "representative": _s("Representative (Art. 27), where applicable."),
    "dpo": _s("Data protection officer, where applicable."),
}

_PROCESSING_RECORD = _obj(
    "The processor's record of processing for this client, in the shape of GDPR Art. 30(2).",
    {
        "processor": _obj("Art. 30(2)(a): the processor (the agency).", dict(_PARTY)),
        "controller": _obj("Art. 30(2)(a): the controller (the client).", dict(_PARTY)),
        "categories_of_processing": _strings(
            "Art. 30(2)(b): the categories of processing carried out for the controller.",
            "A category of processing.",
        ),
        "transfers": _arr(
            "Art. 30(2)(c): transfers of personal data to third countries or international "
            "organisations, with the safeguards.",
            _obj(
                "One transfer.",
                {
                    "country": _s("The third country (ISO 3166-1 alpha-2) or organisation."),
                    "recipient": _s("Who receives the data."),
                    "safeguard": _enum("The Art. 46 safeguard or Art. 49 derogation.", SAFEGUARDS),
                    "documentation": _s("Where the safeguard is documented."),
                },
            ),
        ),
        "security_measures": _obj(
            "Art. 30(2)(d): a general description of the security measures (Art. 32(1)).",
            {
                "description": _s("The measures, as the agency describes them."),
                "enforced_by_system": _strings(
                    "Measures this system enforces and this document evidences.", "A measure."
                ),
            },
        ),
        "updated_at": _when("When the record was last edited; null if never", nullable=True),
    },
)

_SUMMARY = _obj(
    "The figures a reader looks for first.",
    {
        "datasets": _int("Datasets in the inventory (deleted ones included)."),
        "datasets_live": _int("Datasets not deleted."),
        "datasets_with_personal_data": _int("Datasets holding personal data."),
        "three_two_one_met": _int("Datasets for which 3-2-1 holds (retired ones included)."),
        "rpo_met": _int("Datasets whose newest snapshot is within the RPO."),
        "drilled_within_period": _int("Datasets with a successful drill within the period."),
        "open_posture_findings": _int("Findings of the latest audits of the locations used."),
        "deletion_certificates": _int("Deletion certificates issued."),
    },
)

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
            "organization": _ORGANIZATION,
            "client": _CLIENT,
            "summary": _SUMMARY,
            "engagements": _arr("The client's engagements.", _ENGAGEMENT),
            "inventory": _arr("Every dataset of the client, deleted ones too.", _DATASET),
            "storage_locations": _arr(
                "Every location holding a copy: primaries and backup targets.", _LOCATION
            ),
            "backup_policies": _arr("The policies the datasets follow.", _POLICY),
            "protection": _arr("Per dataset: policy, 3-2-1 and RPO per target.", _PROTECTION),
            "restore_tests": _arr("Per dataset: the last drill and restore.", _RESTORE_TESTS),
            "encryption": _ENCRYPTION,
            "access": _ACCESS,
            "access_summary": _ACCESS_SUMMARY,
            "obligations": _arr("Retention and deletion obligations.", _OBLIGATION),
            "legal_holds": _arr("Legal holds, active and released.", _HOLD),
            "deletion_certificates": _arr("Deletions completed and proved.", _CERTIFICATE),
            "processing_record": _PROCESSING_RECORD,
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
