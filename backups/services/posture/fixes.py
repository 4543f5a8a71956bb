"""The admins' fixes: enable versioning, apply the policy's tiering as lifecycle rules, and
enable access logging. Each attempt is recorded and followed by a fresh audit."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from django.db import transaction

from backups.models import (
    AuditTrigger,
    BackupPolicy,
    DefaultFor,
    FixAction,
    PostureCheck,
    PostureFix,
    StorageClass,
)
from backups.services.posture.audit import location_audit
from backups.services.posture.reading import _ABSENT, _call, _jsonable
from backups.services.storage_classes import (
    INFREQUENT_ACCESS_CLASS,
    INSTANT_ARCHIVE_CLASS,
    provider_classes,
)
from backups.services.stores import bucket_settings_store, location_key
from backups.storage import S3ObjectStore, StorageError
from clients.models import ClientNamespace, Dataset, LocationKind, Provider, StorageLocation
from clients.services import paths_overlap
from kernel.crypto import SealError
from kernel.exceptions import NotFound, ValidationFailed
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)

TIERING_RULE_ID = "agencyops-tiering"
DEFAULT_INFREQUENT_ACCESS_DAYS = 30
DEFAULT_ARCHIVE_DAYS = 90
ABORT_MULTIPART_AFTER_DAYS = 7
DEFAULT_LOG_PREFIX = "_logs"
LOGGING_SERVICE = "logging.s3.amazonaws.com"


def _tiering_policy(location: StorageLocation) -> BackupPolicy | None:
    """The first policy that backs up to this location, else the organization's daily
    default."""
    targeting = (
        BackupPolicy.objects.filter(
            organization_id=location.organization_id, policy_targets__location=location
        )
        .order_by("pk")
        .first()
    )
    if targeting is not None:
        return targeting
    return BackupPolicy.objects.filter(
        organization_id=location.organization_id, default_for=DefaultFor.DAILY
    ).first()


def tiering_rule(location: StorageLocation, policy: BackupPolicy | None) -> dict[str, Any]:
    """The lifecycle rule that applies the policy's tiering under the location's prefix:
    current and noncurrent versions to infrequent access, then to the archive class that reads
    at once, and incomplete multipart uploads aborted. Versions are never expired by it. Only
    classes the location's provider has are used (services/storage_classes.py); a provider with
    neither
    is refused (400 on `location`) rather than sent a class it would reject."""
    ia_days = (policy.infrequent_access_after_days if policy else None) or (
        DEFAULT_INFREQUENT_ACCESS_DAYS
    )
    archive_days = (policy.archive_after_days if policy else None) or DEFAULT_ARCHIVE_DAYS
    if archive_days <= ia_days:
        raise ValidationFailed(
            "Archive must come after infrequent access.",
            fields={"policy": "The policy's archive days must exceed its infrequent-access days."},
        )
    uploaded_as = policy.storage_class if policy else StorageClass.STANDARD
    offered = provider_classes(location.provider)
    if not offered & {INFREQUENT_ACCESS_CLASS, INSTANT_ARCHIVE_CLASS}:
        name = Provider(location.provider).label if location.provider in Provider.values else ""
        raise ValidationFailed(
            f"{name or 'This provider'} offers no infrequent-access or archive storage class "
            "through its S3 API: there is nothing to tier to.",
            fields={"location": "Its provider has only the standard class; nothing to tier."},
        )
    steps: list[tuple[int, str]] = []
    if uploaded_as == StorageClass.STANDARD and INFREQUENT_ACCESS_CLASS in offered:
        steps.append((ia_days, INFREQUENT_ACCESS_CLASS))
    if (
        uploaded_as in (StorageClass.STANDARD, StorageClass.STANDARD_IA)
        and INSTANT_ARCHIVE_CLASS in offered
    ):
        steps.append((archive_days, INSTANT_ARCHIVE_CLASS))
    if not steps:
        raise ValidationFailed(
            "The policy already stores its backups in an archive class: there is nothing to tier.",
            fields={"policy": "Pick a policy that uploads to the standard class."},
        )
    prefix = location.prefix.strip("/")
    return {
        "ID": f"{TIERING_RULE_ID}:{prefix}"[:255] if prefix else TIERING_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": f"{prefix}/" if prefix else ""},
        "Transitions": [{"Days": days, "StorageClass": cls} for days, cls in steps],
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": days, "StorageClass": cls} for days, cls in steps
        ],
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_AFTER_DAYS},
    }


def _apply_lifecycle(
    store: S3ObjectStore, location: StorageLocation, policy: BackupPolicy | None
) -> dict[str, Any]:
    rule = tiering_rule(location, policy)
    answer = (
        _call(
            store,
            "read lifecycle rules",
            store.client.get_bucket_lifecycle_configuration,
            absent=_ABSENT[PostureCheck.LIFECYCLE],
        )
        or {}
    )
    # Other rules (other prefixes, other tools) stay; ours is replaced by its ID.
    rules = [r for r in answer.get("Rules", []) if r.get("ID") != rule["ID"]]
    rules.append(rule)
    extra: dict[str, Any] = {}
    if answer.get("TransitionDefaultMinimumObjectSize"):
        extra["TransitionDefaultMinimumObjectSize"] = answer["TransitionDefaultMinimumObjectSize"]
    _call(
        store,
        "apply lifecycle rules",
        store.client.put_bucket_lifecycle_configuration,
        LifecycleConfiguration={"Rules": rules},
        **extra,
    )
    return {
        "policy": str(policy.public_id) if policy else None,
        "policy_name": policy.name if policy else None,
        "rule": _jsonable(rule),
        "rules_kept": len(rules) - 1,
    }


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _enable_logging(
    store: S3ObjectStore,
    location: StorageLocation,
    *,
    log_prefix: str | None,
    log_bucket: str | None,
) -> dict[str, Any]:
    """Server access logs to `<location prefix>/<log prefix>/` (default `_logs`), the layout a
    storage-log source on the location with that prefix ingests. The target bucket's policy
    gains one statement letting the logging service write there (AWS's recommended grant;
    ACLs are disabled on new buckets); other statements are kept."""
    target_bucket = log_bucket or location.bucket
    target_prefix = location_key(location, log_prefix or DEFAULT_LOG_PREFIX) + "/"
    partition = _partition(location.region)
    digest = hashlib.sha256(f"{location.bucket}/{target_prefix}".encode()).hexdigest()[:12]
    statement = {
        "Sid": f"AgencyOpsAccessLogs{digest}",
        "Effect": "Allow",
        "Principal": {"Service": LOGGING_SERVICE},
        "Action": ["s3:PutObject"],
        "Resource": f"arn:{partition}:s3:::{target_bucket}/{target_prefix}*",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{location.bucket}"}},
    }
    answer = _call(
        store,
        "read the log bucket's policy",
        store.client.get_bucket_policy,
        bucket=target_bucket,
        absent=_ABSENT["policy"],
    )
    try:
        document = json.loads(answer["Policy"]) if answer else {}
    except (ValueError, TypeError, KeyError):
        raise StorageError("the target bucket's policy is not readable JSON") from None
    if not isinstance(document, dict):
        raise StorageError("the target bucket's policy is not a JSON object")
    document.setdefault("Version", "2012-10-17")
    kept = [s for s in document.get("Statement", []) if s.get("Sid") != statement["Sid"]]
    document["Statement"] = [*kept, statement]
    _call(
        store,
        "grant the logging service",
        store.client.put_bucket_policy,
        bucket=target_bucket,
        Policy=json.dumps(document),
    )
    _call(
        store,
        "enable access logging",
        store.client.put_bucket_logging,
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": target_bucket, "TargetPrefix": target_prefix}
        },
    )
    return {"target_bucket": target_bucket, "target_prefix": target_prefix, "grant": statement}


def _enable_versioning(store: S3ObjectStore) -> dict[str, Any]:
    _call(
        store,
        "enable versioning",
        store.client.put_bucket_versioning,
        VersioningConfiguration={"Status": "Enabled"},
    )
    return {"versioning": "Enabled"}


def _clean_log_prefix(value: str | None) -> str | None:
    if value is None or not value.strip("/ "):
        return None
    prefix = value.strip().strip("/")
    if len(prefix) > 512 or ".." in prefix.split("/") or any(ord(c) < 32 for c in prefix):
        raise ValidationFailed(
            "Invalid log prefix.",
            fields={"log_prefix": "A relative key prefix of at most 512 characters, no '..'."},
        )
    return prefix


def _log_target_check(
    location: StorageLocation, prefix: str | None, log_bucket: str | None
) -> None:
    """Where access logs may land. A bucket's logs name every object of every client on it, so
    they go to the location's own bucket or to the bucket of another S3 location of the
    organization (same endpoint) that is shared or dedicated to this location's client — and
    there never into a client's folder or a dataset (on a shared location), where a client
    would read the others' file names or back them up."""
    target = location
    if log_bucket and log_bucket != location.bucket:
        candidates = StorageLocation.objects.filter(
            organization_id=location.organization_id,
            kind=LocationKind.S3,
            bucket=log_bucket,
            endpoint_url=location.endpoint_url,
        )
        found = next((c for c in candidates if c.client_id in (None, location.client_id)), None)
        if found is None:
            raise ValidationFailed(
                "Logs go to this location's bucket or to another storage location of the "
                "organization (shared, or dedicated to the same client).",
                fields={"log_bucket": "Not a bucket of the organization's locations."},
            )
        target = found
    if target.client_id is not None:
        return  # a dedicated location is its client's space entirely
    # The key prefix the logs get, relative to the target location's own prefix.
    key = location_key(location, prefix or DEFAULT_LOG_PREFIX)
    base = target.prefix.strip("/")
    if base and not (key == base or key.startswith(base + "/")):
        return  # outside the target location: no client's folder or dataset there
    relative = key[len(base) :].strip("/") if base else key
    taken = [n.path for n in ClientNamespace.objects.filter(location=target)]
    taken += [d.path for d in Dataset.objects.filter(location=target)]
    if any(paths_overlap(relative, path.strip("/")) for path in taken):
        raise ValidationFailed(
            "Access logs would land in a client's folder or a dataset of the location.",
            fields={
                "log_prefix": "Overlaps a client's folder or a dataset; keep the default _logs."
            },
        )


def posture_fix_apply(
    *,
    actor: Actor,
    location: StorageLocation,
    action: str,
    log_prefix: str | None = None,
    log_bucket: str | None = None,
    policy: BackupPolicy | None = None,
    now: datetime | None = None,
) -> PostureFix:
    """Change one protection setting of an S3 location's bucket. Owners and admins only. The
    attempt is recorded (PostureFix, with the configuration sent and never a credential, and
    an audit-log entry) whether the storage service accepted it or not, then the bucket is
    audited again (trigger after_fix). `log_prefix` is relative to the location's prefix."""
    actor.require_admin("change a bucket's protection settings")
    if location.organization_id != actor.organization_id:
        raise NotFound()
    if action not in FixAction.values:
        raise ValidationFailed("Unknown fix.", fields={"action": "Unknown fix action."})
    if location.kind != LocationKind.S3:
        raise ValidationFailed(
            "Only S3 locations have bucket settings.", fields={"location": "Pick an S3 location."}
        )
    if policy is not None and policy.organization_id != actor.organization_id:
        raise ValidationFailed("Unknown policy.", fields={"policy": "No such policy."})
    if action != FixAction.APPLY_LIFECYCLE and policy is not None:
        raise ValidationFailed(
            "Only apply_lifecycle uses a policy.", fields={"policy": "Not used by this fix."}
        )
    if action != FixAction.ENABLE_LOGGING and (log_prefix or log_bucket):
        raise ValidationFailed(
            "Only enable_logging uses a log prefix or bucket.",
            fields={"log_prefix": "Not used by this fix."},
        )
    prefix = _clean_log_prefix(log_prefix)
    if action == FixAction.ENABLE_LOGGING:
        _log_target_check(location, prefix, log_bucket)
    if action == FixAction.APPLY_LIFECYCLE:
        policy = policy or _tiering_policy(location)
        tiering_rule(location, policy)  # refuses an unusable policy before anything is sent
    details: dict[str, Any] = {}
    error = ""
    try:
        store = bucket_settings_store(location)
        if action == FixAction.ENABLE_VERSIONING:
            details = _enable_versioning(store)
        elif action == FixAction.APPLY_LIFECYCLE:
            details = _apply_lifecycle(store, location, policy)
        else:
            details = _enable_logging(store, location, log_prefix=prefix, log_bucket=log_bucket)
    except (StorageError, ValueError, SealError) as exc:
        error = str(exc) or type(exc).__name__
    with transaction.atomic():
        fix = PostureFix.objects.create(
            organization_id=location.organization_id,
            location=location,
            action=action,
            requested_by=actor.user,
            succeeded=not error,
            error=error,
            details=details,
        )
    logger.info(
        "posture fix %s on location %s: %s",
        action,
        location.public_id,
        "applied" if not error else "failed",
    )
    location_audit(location, trigger=AuditTrigger.AFTER_FIX, actor=actor, now=now)
    return fix
