"""Evidence schema sections about people and obligations: who can touch the data, what the
access log recorded, obligations, legal holds, deletion certificates, the record of
processing, and the summary figures."""

from __future__ import annotations

from lifecycle.services.evidence.schema_builders import (
    SAFEGUARDS,
    _arr,
    _bool,
    _day,
    _enum,
    _int,
    _obj,
    _s,
    _strings,
    _uuid,
    _when,
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

ACCESS = _obj(
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

ACCESS_SUMMARY = _obj(
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

OBLIGATION = _obj(
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

HOLD = _obj(
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

CERTIFICATE = _obj(
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

PROCESSING_RECORD = _obj(
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

SUMMARY = _obj(
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
