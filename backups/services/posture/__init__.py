"""Bucket posture: what protects each S3 location, read from the storage service itself.

An audit reads versioning, MFA delete, object lock and its default retention, replication,
lifecycle rules, default encryption, the public access block and access logging, keeps what the
service answered (`PostureAudit.facts`) and turns each missing protection into a finding with a
severity. A protection that newly fails at high or critical (or a bucket that stops answering)
opens a posture alert; one that passes again clears it. Admins can apply three fixes: enable
versioning, apply the policy's tiering as lifecycle rules, and enable access logging.

`PostureAudit.facts` keys (absent when the bucket could not be reached):
  "versioning": "Enabled" | "Suspended" | "Disabled"; "mfa_delete": "Enabled" | "Disabled";
  "object_lock": {"enabled", "mode", "days", "years"}; "replication": [rules];
  "lifecycle": [rules]; "encryption": algorithm or None; "public_access_block": {four bools}
  or None; "logging": {"target_bucket", "target_prefix"} or None; and "errors": {check:
  message} for settings that could not be read (their key is then None).
"""

# The read lives in selectors; lifecycle/services/evidence.py still imports it from here.
from backups.selectors import latest_audits
from backups.services.posture.audit import (
    ALERTING,
    SCHEDULED_AUDIT_EVERY,
    location_audit,
    location_audit_by_id,
    posture_audit_all,
)
from backups.services.posture.findings import Finding, posture_findings
from backups.services.posture.fixes import (
    ABORT_MULTIPART_AFTER_DAYS,
    DEFAULT_ARCHIVE_DAYS,
    DEFAULT_INFREQUENT_ACCESS_DAYS,
    DEFAULT_LOG_PREFIX,
    LOGGING_SERVICE,
    TIERING_RULE_ID,
    posture_fix_apply,
    tiering_rule,
)

__all__ = [
    "ABORT_MULTIPART_AFTER_DAYS",
    "ALERTING",
    "DEFAULT_ARCHIVE_DAYS",
    "DEFAULT_INFREQUENT_ACCESS_DAYS",
    "DEFAULT_LOG_PREFIX",
    "LOGGING_SERVICE",
    "SCHEDULED_AUDIT_EVERY",
    "TIERING_RULE_ID",
    "Finding",
    "latest_audits",
    "location_audit",
    "location_audit_by_id",
    "posture_audit_all",
    "posture_findings",
    "posture_fix_apply",
    "tiering_rule",
]
