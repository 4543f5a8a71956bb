"""Procurement evidence: the signed document (document) built from its sections (data,
people), its JSON Schema (schema), and the procurement tokens that read it (tokens)."""

from lifecycle.services.evidence.document import (
    SignedEvidence,
    evidence_document,
    evidence_file_bytes,
    evidence_read,
    evidence_read_check,
    evidence_sign,
    evidence_verify,
)
from lifecycle.services.evidence.schema import evidence_json_schema, evidence_openapi_schema
from lifecycle.services.evidence.tokens import (
    PROCUREMENT_TOKEN_PREFIX,
    TokenAttemptsThrottled,
    evidence_token_authenticate,
    evidence_token_grant_get,
    evidence_token_issue,
    evidence_token_open,
    evidence_token_revoke,
    evidence_token_use_record,
)

__all__ = [
    "PROCUREMENT_TOKEN_PREFIX",
    "SignedEvidence",
    "TokenAttemptsThrottled",
    "evidence_document",
    "evidence_file_bytes",
    "evidence_json_schema",
    "evidence_openapi_schema",
    "evidence_read",
    "evidence_read_check",
    "evidence_sign",
    "evidence_token_authenticate",
    "evidence_token_grant_get",
    "evidence_token_issue",
    "evidence_token_open",
    "evidence_token_revoke",
    "evidence_token_use_record",
    "evidence_verify",
]
