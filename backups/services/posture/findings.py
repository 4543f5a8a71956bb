"""Judging what was read: each missing protection of a bucket becomes a finding with a
severity (and the fix an admin can apply, where there is one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backups.models import SEVERITY_RANK, FixAction, PostureCheck, Severity
from backups.services.posture.reading import _PUBLIC_ACCESS_FLAGS


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    message: str
    fix_action: str = ""


def _rule_prefix(rule: Mapping[str, Any]) -> str | None:
    """The key prefix a lifecycle rule applies to; None when it also needs tags (AgencyOps
    never tags its objects, so such a rule does not cover them)."""
    filters = rule.get("Filter")
    if filters is None:
        return str(rule.get("Prefix") or "")
    if "Tag" in filters:
        return None
    conditions = filters.get("And")
    if conditions is not None:
        if conditions.get("Tags"):
            return None
        return str(conditions.get("Prefix") or "")
    return str(filters.get("Prefix") or "")


def _covers(rule: Mapping[str, Any], prefix: str) -> bool:
    """Whether an enabled rule applies to every key under the location's prefix."""
    if rule.get("Status") != "Enabled":
        return False
    rule_prefix = _rule_prefix(rule)
    if rule_prefix is None:
        return False
    scope = prefix.strip("/") + "/" if prefix.strip("/") else ""
    return scope.startswith(rule_prefix)


def _tiers_or_expires(rule: Mapping[str, Any]) -> bool:
    return bool(
        rule.get("Transitions")
        or rule.get("NoncurrentVersionTransitions")
        or rule.get("NoncurrentVersionExpiration")
    )


_LABELS = dict(PostureCheck.choices)


def _unreadable(check: str, error: str, severity: str) -> Finding:
    label = _LABELS[check].lower()
    return Finding(
        check,
        severity,
        f"The bucket's {label} setting could not be read ({error}), so it cannot be shown to "
        "protect the backups. Check that the location's credentials may read bucket settings.",
    )


def _versioning(facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str) -> Finding | None:
    """Versioning off or suspended: critical."""
    versioning = facts.get(PostureCheck.VERSIONING)
    if versioning == "Suspended":
        return Finding(
            PostureCheck.VERSIONING,
            Severity.CRITICAL,
            "Versioning is suspended: a deletion or an overwrite now destroys the only copy "
            "of an object. Enable versioning again so earlier versions are kept.",
            FixAction.ENABLE_VERSIONING,
        )
    if versioning != "Enabled":
        return Finding(
            PostureCheck.VERSIONING,
            Severity.CRITICAL,
            "Versioning is off: a deletion or an overwrite in this bucket cannot be undone. "
            "Enable versioning so every earlier version of a backup object is kept.",
            FixAction.ENABLE_VERSIONING,
        )
    return None


def _mfa_delete(facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str) -> Finding | None:
    """MFA delete off: low."""
    if facts.get(PostureCheck.MFA_DELETE) != "Enabled":
        return Finding(
            PostureCheck.MFA_DELETE,
            Severity.LOW,
            "MFA delete is off: object versions can be deleted for good without a second "
            "factor. Only the bucket owner's root account can turn it on, with an MFA device.",
        )
    return None


def _object_lock(
    facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str
) -> Finding | None:
    """A policy asks for retention the bucket cannot give: high; object lock off: medium; on
    without a default retention and no policy asking for one: low."""
    lock = facts.get(PostureCheck.OBJECT_LOCK)
    asked = facts.get("policy_retention") or []
    if PostureCheck.OBJECT_LOCK in errors:
        return _unreadable(PostureCheck.OBJECT_LOCK, errors["object_lock"], Severity.MEDIUM)
    if (not lock or not lock.get("enabled")) and asked:
        names = ", ".join(sorted({str(a["policy_name"]) for a in asked}))
        return Finding(
            PostureCheck.OBJECT_LOCK,
            Severity.HIGH,
            f"The policy {names} asks for Object Lock retention on this bucket, but the bucket "
            "has Object Lock off: every backup to it fails. Object Lock is chosen when a bucket "
            "is created; move the target to a bucket created with it.",
        )
    if not lock or not lock.get("enabled"):
        return Finding(
            PostureCheck.OBJECT_LOCK,
            Severity.MEDIUM,
            "Object lock is off: anyone holding this bucket's credentials can delete every "
            "version of a backup. Object lock keeps versions for a retention period; it is "
            "chosen when a bucket is created, so it means moving to a new bucket.",
        )
    if not (lock.get("days") or lock.get("years") or asked):
        return Finding(
            PostureCheck.OBJECT_LOCK,
            Severity.LOW,
            "Object lock is on but sets no default retention and no policy asks for one, so "
            "new backup objects are not locked. Set a retention on the policy's target (or a "
            "default retention on the bucket).",
        )
    return None


def _replication(
    facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str
) -> Finding | None:
    """No replication rule: low."""
    if PostureCheck.REPLICATION in errors:
        return _unreadable(PostureCheck.REPLICATION, errors["replication"], Severity.LOW)
    if not facts.get(PostureCheck.REPLICATION):
        return Finding(
            PostureCheck.REPLICATION,
            Severity.LOW,
            "No replication rule copies this bucket elsewhere. The independent copy that "
            "3-2-1 counts comes from a policy's second target; replication would add one "
            "inside the storage service.",
        )
    return None


def _lifecycle(facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str) -> Finding | None:
    """No lifecycle rule under the prefix that tiers or expires old versions: low."""
    if PostureCheck.LIFECYCLE in errors:
        return _unreadable(PostureCheck.LIFECYCLE, errors["lifecycle"], Severity.LOW)
    if not any(
        _covers(rule, prefix) and _tiers_or_expires(rule)
        for rule in facts.get(PostureCheck.LIFECYCLE) or []
    ):
        where = f"under '{prefix.strip('/')}/'" if prefix.strip("/") else "in the bucket"
        return Finding(
            PostureCheck.LIFECYCLE,
            Severity.LOW,
            f"No lifecycle rule moves older backup data {where} to cheaper storage or "
            "expires old versions, so every version is billed at the full price. Apply the "
            "policy's tiering as lifecycle rules.",
            FixAction.APPLY_LIFECYCLE,
        )
    return None


def _encryption(facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str) -> Finding | None:
    """No default encryption: medium."""
    if PostureCheck.ENCRYPTION in errors:
        return _unreadable(PostureCheck.ENCRYPTION, errors["encryption"], Severity.MEDIUM)
    if not facts.get(PostureCheck.ENCRYPTION):
        return Finding(
            PostureCheck.ENCRYPTION,
            Severity.MEDIUM,
            "The bucket has no default encryption. AgencyOps encrypts every backup chunk and "
            "manifest on its side (AES-256-GCM) before upload, so backup contents are "
            "protected anyway; default encryption also covers objects other tools write.",
        )
    return None


def _public_access_block(
    facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str
) -> Finding | None:
    """Public access block missing or partial: high."""
    block = facts.get(PostureCheck.PUBLIC_ACCESS_BLOCK)
    if PostureCheck.PUBLIC_ACCESS_BLOCK in errors:
        return _unreadable(
            PostureCheck.PUBLIC_ACCESS_BLOCK, errors["public_access_block"], Severity.HIGH
        )
    if not block:
        return Finding(
            PostureCheck.PUBLIC_ACCESS_BLOCK,
            Severity.HIGH,
            "No public access block is set: one bucket policy or ACL change could make "
            "backups public. Turn on all four public access block settings.",
        )
    if not all(block.get(flag) for flag in _PUBLIC_ACCESS_FLAGS):
        off = ", ".join(flag for flag in _PUBLIC_ACCESS_FLAGS if not block.get(flag))
        return Finding(
            PostureCheck.PUBLIC_ACCESS_BLOCK,
            Severity.HIGH,
            f"The public access block is partial ({off} off): a bucket policy or ACL could "
            "still make backups public. Turn on all four settings.",
        )
    return None


def _logging(facts: Mapping[str, Any], errors: Mapping[str, str], prefix: str) -> Finding | None:
    """Access logging off: medium."""
    if PostureCheck.LOGGING in errors:
        return _unreadable(PostureCheck.LOGGING, errors["logging"], Severity.MEDIUM)
    if not facts.get(PostureCheck.LOGGING):
        return Finding(
            PostureCheck.LOGGING,
            Severity.MEDIUM,
            "Access logging is off: reads and deletions in this bucket leave no record. "
            "Enable server access logging to a log prefix.",
            FixAction.ENABLE_LOGGING,
        )
    return None


def posture_findings(
    *, reachable: bool, error: str, facts: Mapping[str, Any], prefix: str
) -> list[Finding]:
    """The missing protections in a reading, worst first. The rules:
    no versioning or versioning suspended: critical (fix: enable versioning); public access
    block missing or partial: high; no object lock, no default encryption, no access logging
    (fix: enable logging): medium; no lifecycle rule tiering or expiring old versions under
    the prefix (fix: apply the policy's tiering), no replication, MFA delete off: low."""
    if not reachable:
        return [
            Finding(
                PostureCheck.REACHABLE,
                Severity.CRITICAL,
                f"The bucket could not be reached: {error} Backups to it fail and its protection "
                "cannot be checked until it answers again.",
            )
        ]
    errors: Mapping[str, str] = facts.get("errors") or {}
    checks = (
        _versioning,
        _mfa_delete,
        _object_lock,
        _replication,
        _lifecycle,
        _encryption,
        _public_access_block,
        _logging,
    )
    found = [f for check in checks if (f := check(facts, errors, prefix)) is not None]
    found.sort(key=lambda f: (SEVERITY_RANK[Severity(f.severity)], f.check))
    return found
