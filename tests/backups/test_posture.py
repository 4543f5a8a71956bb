"""Bucket posture: audits against moto's S3 server over HTTP, the admins' fixes read back from
the bucket, regression alerts, the daily sweep, the API and the page."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    AlertState,
    BackupPolicy,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    PostureFix,
)
from backups.selectors import latest_audits
from backups.services.posture import (
    location_audit,
    posture_audit_all,
    posture_findings,
    posture_fix_apply,
)
from backups.tasks import location_audit_task, posture_audit_all_task
from clients import services as clients_services
from clients.models import StorageLocation
from kernel.exceptions import Forbidden, ValidationFailed
from kernel.tenancy import actor_for_user
from tests.backups.conftest import Agency
from tests.factories import UserFactory
from tests.s3server import free_port

# Distinctive credentials (moto without auth accepts any): they must never appear in output.
SECRET_CREDENTIALS = {
    "access_key_id": "AKIAPOSTURE0000TEST1",
    "secret_access_key": "posture-secret-5f1c9a7e2d",
}


def _s3(agency: Agency, location: StorageLocation) -> Any:
    """The bucket as the test sees it, beside the application."""
    return agency.raw_store(location.bucket, location.endpoint_url).client


def _checks(audit: PostureAudit) -> dict[str, PostureFinding]:
    return {f.check_name: f for f in audit.findings.all()}


def _latest(location: StorageLocation) -> PostureAudit:
    audit = PostureAudit.objects.filter(location=location).order_by("-audited_at", "-id").first()
    assert isinstance(audit, PostureAudit)
    return audit


def _open_alerts(location: StorageLocation) -> dict[str, Alert]:
    return {
        a.incident_key.rsplit(":", 1)[1]: a
        for a in Alert.objects.unresolved().filter(
            incident_key__startswith=f"posture:{location.public_id}:"
        )
    }


def _lead(agency: Agency, username: str = "posture-lead") -> Any:
    user = UserFactory(username=username)
    clients_services.membership_add(actor=agency.actor, user=user, role="lead")
    return user


# --- audits and fixes against the bucket ---


def test_unversioned_bucket_is_critical_and_enable_versioning_fixes_it(agency: Agency) -> None:
    location = agency.s3_location("Backups", credentials=SECRET_CREDENTIALS)

    audit = location_audit(location, trigger="manual", actor=agency.actor)

    assert audit.reachable
    assert audit.requested_by == agency.admin
    assert audit.facts["versioning"] == "Disabled"
    assert audit.facts["lifecycle"] == []
    assert audit.facts["logging"] is None
    assert audit.facts["public_access_block"] is None
    found = _checks(audit)
    assert found["versioning"].severity == "critical"
    assert found["versioning"].fix_action == "enable_versioning"
    assert found["public_access_block"].severity == "high"
    assert found["object_lock"].severity == "medium"
    assert found["logging"].fix_action == "enable_logging"
    assert found["lifecycle"].fix_action == "apply_lifecycle"
    assert "client side" in found["encryption"].message or "on its side" in (
        found["encryption"].message
    )
    assert "reachable" not in found

    fix = posture_fix_apply(actor=agency.actor, location=location, action="enable_versioning")

    assert fix.succeeded, fix.error
    assert fix.requested_by == agency.admin
    assert _s3(agency, location).get_bucket_versioning(Bucket=location.bucket)["Status"] == (
        "Enabled"
    )
    after = _latest(location)
    assert after.trigger == "after_fix"
    assert after.facts["versioning"] == "Enabled"
    assert "versioning" not in _checks(after)
    # The change is in the audit trail, and no credential is anywhere in what was recorded.
    entries = LogEntry.objects.get_for_object(fix)
    assert entries.count() == 1
    recorded = json.dumps([after.facts, fix.details, [e.changes for e in entries]])
    for secret in SECRET_CREDENTIALS.values():
        assert secret not in recorded


def test_apply_lifecycle_reads_back_the_policy_tiering_and_keeps_other_rules(
    agency: Agency,
) -> None:
    # AWS has both classes the rule moves to (a MinIO location has neither: see test_cold_tiers).
    location = agency.s3_location("Backups", prefix="backups", provider="aws")
    s3 = _s3(agency, location)
    other = {
        "ID": "someone-elses",
        "Status": "Enabled",
        "Filter": {"Prefix": "exports/"},
        "Expiration": {"Days": 365},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=location.bucket, LifecycleConfiguration={"Rules": [other]}
    )
    assert "lifecycle" in _checks(location_audit(location, trigger="manual"))

    # No policy targets the location: the organization's daily default (30 / 90 days).
    fix = posture_fix_apply(actor=agency.actor, location=location, action="apply_lifecycle")
    posture_fix_apply(actor=agency.actor, location=location, action="apply_lifecycle")

    assert fix.succeeded, fix.error
    assert fix.details["policy"] == str(agency.policy("daily").public_id)
    rules = {
        r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=location.bucket)["Rules"]
    }
    assert set(rules) == {"someone-elses", "agencyops-tiering:backups"}  # merged, not doubled
    ours = rules["agencyops-tiering:backups"]
    assert ours["Filter"] == {"Prefix": "backups/"}
    assert ours["Status"] == "Enabled"
    assert [(t["Days"], t["StorageClass"]) for t in ours["Transitions"]] == [
        (30, "STANDARD_IA"),
        (90, "GLACIER_IR"),
    ]
    assert [
        (t["NoncurrentDays"], t["StorageClass"]) for t in ours["NoncurrentVersionTransitions"]
    ] == [
        (30, "STANDARD_IA"),
        (90, "GLACIER_IR"),
    ]
    assert ours["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert "NoncurrentVersionExpiration" not in ours  # tiering never deletes versions
    assert "lifecycle" not in _checks(_latest(location))

    # A policy that backs up to this location is the default source of the tiering.
    targeting = BackupPolicy.objects.create(
        organization=agency.org,
        name="Quarterly tiering",
        frequency="daily",
        infrequent_access_after_days=45,
        archive_after_days=200,
    )
    PolicyTarget.objects.create(policy=targeting, location=location)
    posture_fix_apply(actor=agency.actor, location=location, action="apply_lifecycle")
    rules = {
        r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=location.bucket)["Rules"]
    }
    assert [t["Days"] for t in rules["agencyops-tiering:backups"]["Transitions"]] == [45, 200]
    assert "someone-elses" in rules


def test_apply_lifecycle_refuses_a_policy_whose_archive_comes_first(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    backwards = BackupPolicy.objects.create(
        organization=agency.org,
        name="Backwards",
        frequency="daily",
        infrequent_access_after_days=90,
        archive_after_days=30,
    )
    with pytest.raises(ValidationFailed) as refused:
        posture_fix_apply(
            actor=agency.actor, location=location, action="apply_lifecycle", policy=backwards
        )
    assert "policy" in refused.value.fields
    assert not PostureFix.objects.filter(location=location).exists()


def test_enable_logging_reads_back_and_keeps_the_bucket_policy(agency: Agency) -> None:
    location = agency.s3_location("Backups", prefix="backups")
    s3 = _s3(agency, location)
    existing = {
        "Sid": "ReadForAuditors",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": ["s3:GetObject"],
        "Resource": f"arn:aws:s3:::{location.bucket}/*",
    }
    s3.put_bucket_policy(
        Bucket=location.bucket,
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [existing]}),
    )

    fix = posture_fix_apply(actor=agency.actor, location=location, action="enable_logging")

    assert fix.succeeded, fix.error
    logging = s3.get_bucket_logging(Bucket=location.bucket)["LoggingEnabled"]
    assert logging == {"TargetBucket": location.bucket, "TargetPrefix": "backups/_logs/"}
    statements = json.loads(s3.get_bucket_policy(Bucket=location.bucket)["Policy"])["Statement"]
    assert existing in statements
    grant = next(
        s for s in statements if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    )
    assert grant["Resource"] == f"arn:aws:s3:::{location.bucket}/backups/_logs/*"
    after = _latest(location)
    assert after.facts["logging"] == {
        "target_bucket": location.bucket,
        "target_prefix": "backups/_logs/",
    }
    assert "logging" not in _checks(after)

    # Another prefix: logging moves there, the grant for it joins the policy once.
    posture_fix_apply(
        actor=agency.actor, location=location, action="enable_logging", log_prefix="access/"
    )
    posture_fix_apply(
        actor=agency.actor, location=location, action="enable_logging", log_prefix="access"
    )
    logging = s3.get_bucket_logging(Bucket=location.bucket)["LoggingEnabled"]
    assert logging["TargetPrefix"] == "backups/access/"
    statements = json.loads(s3.get_bucket_policy(Bucket=location.bucket)["Policy"])["Statement"]
    assert len(statements) == 3


def test_a_refused_fix_is_recorded_with_its_error(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    with pytest.raises(ValidationFailed):
        posture_fix_apply(
            actor=agency.actor, location=location, action="enable_logging", log_prefix="../up"
        )
    # a log bucket of the organization's that the storage service does not have
    missing = agency.s3_location("Log bucket", bucket="no-such-log-bucket", create_bucket=False)
    fix = posture_fix_apply(
        actor=agency.actor,
        location=location,
        action="enable_logging",
        log_bucket=missing.bucket,
    )
    assert not fix.succeeded
    assert "NoSuchBucket" in fix.error
    assert PostureFix.objects.get(pk=fix.pk).error == fix.error
    assert "logging" in _checks(_latest(location))  # still off, and audited again


def test_unreachable_or_missing_bucket_is_a_finding_not_an_exception(
    agency: Agency, s3_endpoint_with_auth: str
) -> None:
    dead = agency.s3_location(
        "Gone", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )
    missing = agency.s3_location("Missing", create_bucket=False)
    refused = agency.s3_location(
        "Wrong keys",
        endpoint=s3_endpoint_with_auth,
        create_bucket=False,
        credentials=SECRET_CREDENTIALS,
    )

    for location, expected in (
        (dead, "unreachable"),
        (missing, "NoSuchBucket"),
        (refused, "InvalidAccessKeyId"),
    ):
        audit = location_audit(location, trigger="manual")
        assert not audit.reachable
        assert expected in audit.error, audit.error
        assert audit.facts == {}
        (finding,) = audit.findings.all()
        assert (finding.check_name, finding.severity) == ("reachable", "critical")
        assert expected in finding.message
    assert SECRET_CREDENTIALS["secret_access_key"] not in _latest(refused).error


def test_local_directories_are_not_audited(agency: Agency) -> None:
    with pytest.raises(ValidationFailed):
        location_audit(agency.primary, trigger="manual")
    assert posture_audit_all() == []
    assert not PostureAudit.objects.exists()


def test_only_admins_audit_on_demand_or_fix(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    lead = actor_for_user(_lead(agency))
    assert lead is not None
    with pytest.raises(Forbidden):
        location_audit(location, trigger="manual", actor=lead)
    with pytest.raises(Forbidden):
        posture_fix_apply(actor=lead, location=location, action="enable_versioning")
    assert not PostureAudit.objects.exists()
    assert not PostureFix.objects.exists()


# --- what counts as a finding ---


def test_findings_judge_lifecycle_scope_public_access_and_unreadable_settings() -> None:
    base: dict[str, Any] = {
        "versioning": "Enabled",
        "mfa_delete": "Enabled",
        "object_lock": {"enabled": True, "mode": "GOVERNANCE", "days": 30, "years": None},
        "replication": [{"ID": "r"}],
        "encryption": "AES256",
        "public_access_block": dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            True,
        ),
        "logging": {"target_bucket": "b", "target_prefix": "p/"},
    }
    tiering = {"Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}], "Status": "Enabled"}

    def checks(prefix: str = "backups", **facts: Any) -> dict[str, str]:
        found = posture_findings(reachable=True, error="", facts={**base, **facts}, prefix=prefix)
        return {f.check: f.severity for f in found}

    assert checks(lifecycle=[{**tiering, "Filter": {"Prefix": ""}}]) == {}
    assert checks(lifecycle=[{**tiering, "Filter": {"Prefix": "backups/"}}]) == {}
    # A rule for another prefix, a narrower one, a tagged one or a disabled one does not count.
    for rule in (
        {**tiering, "Filter": {"Prefix": "exports/"}},
        {**tiering, "Filter": {"Prefix": "backups/old/"}},
        {**tiering, "Filter": {"And": {"Prefix": "", "Tags": [{"Key": "k", "Value": "v"}]}}},
        {**tiering, "Filter": {"Prefix": ""}, "Status": "Disabled"},
        {"Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 9}},
    ):
        assert checks(lifecycle=[rule]) == {"lifecycle": "low"}, rule
    expires_old = {"Filter": {}, "Status": "Enabled", "NoncurrentVersionExpiration": {"X": 1}}
    assert checks(lifecycle=[expires_old]) == {}

    partial = {**base["public_access_block"], "RestrictPublicBuckets": False}
    found = posture_findings(
        reachable=True,
        error="",
        facts={**base, "lifecycle": [tiering], "public_access_block": partial},
        prefix="",
    )
    assert [(f.check, f.severity) for f in found] == [("public_access_block", "high")]
    assert "RestrictPublicBuckets" in found[0].message

    assert checks(lifecycle=[tiering], prefix="", versioning="Suspended") == {
        "versioning": "critical"
    }
    no_retention = {"enabled": True, "mode": None, "days": None, "years": None}
    assert checks(lifecycle=[tiering], prefix="", object_lock=no_retention) == {
        "object_lock": "low"
    }
    unreadable = checks(
        lifecycle=[tiering],
        prefix="",
        replication=None,
        errors={"replication": "read replication failed: AccessDenied"},
    )
    assert unreadable == {"replication": "low"}
    assert [
        f.check
        for f in posture_findings(
            reachable=True, error="", facts={**base, "lifecycle": []}, prefix=""
        )
    ] == ["lifecycle"]


# --- regression alerts ---


def test_regressions_raise_one_alert_and_recoveries_clear_it(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    s3 = _s3(agency, location)
    now = timezone.now()

    location_audit(location, trigger="scheduled", now=now)
    # The first audit alerts on its critical finding only (the missing public access block
    # is high: a standing condition, not a regression).
    alerts = _open_alerts(location)
    assert set(alerts) == {"versioning"}
    assert alerts["versioning"].kind == AlertKind.POSTURE_REGRESSION
    assert alerts["versioning"].severity == "critical"
    assert alerts["versioning"].location == location

    location_audit(location, trigger="scheduled", now=now + timedelta(days=1))
    assert Alert.objects.filter(incident_key__startswith="posture:").count() == 1

    posture_fix_apply(
        actor=agency.actor, location=location, action="enable_versioning", now=now + timedelta(2)
    )
    versioning = Alert.objects.get(incident_key=f"posture:{location.public_id}:versioning")
    assert versioning.state == AlertState.RESOLVED
    assert _open_alerts(location) == {}

    # Someone suspends versioning and removes a public access block that was complete.
    s3.put_public_access_block(
        Bucket=location.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    location_audit(location, trigger="scheduled", now=now + timedelta(days=3))
    assert _open_alerts(location) == {}
    s3.put_bucket_versioning(
        Bucket=location.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    s3.delete_public_access_block(Bucket=location.bucket)
    location_audit(location, trigger="scheduled", now=now + timedelta(days=4))

    alerts = _open_alerts(location)
    assert {k: a.severity for k, a in alerts.items()} == {
        "versioning": "critical",
        "public_access_block": "high",
    }
    assert Alert.objects.filter(incident_key__startswith="posture:").count() == 3


def test_an_outage_alerts_once_and_is_no_regression_of_every_setting(agency: Agency) -> None:
    location = agency.s3_location(
        "Backups", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )
    now = timezone.now()
    location_audit(location, trigger="scheduled", now=now)
    location_audit(location, trigger="scheduled", now=now + timedelta(days=1))
    alerts = _open_alerts(location)
    assert set(alerts) == {"reachable"}
    assert alerts["reachable"].occurrences == 1

    # The endpoint answers again (its bucket has no versioning): the outage clears and, with
    # no earlier reading to compare with, only the critical finding alerts.
    StorageLocation.objects.filter(pk=location.pk).update(endpoint_url=agency.s3_endpoint)
    location.refresh_from_db()
    agency.raw_store(location.bucket).create_bucket()
    location_audit(location, trigger="scheduled", now=now + timedelta(days=2))
    assert set(_open_alerts(location)) == {"versioning"}
    reachable = Alert.objects.get(incident_key=f"posture:{location.public_id}:reachable")
    assert reachable.state == AlertState.RESOLVED


# --- the daily sweep and the tasks ---


def test_daily_audit_covers_every_s3_location_and_survives_a_broken_one(
    new_agency: Callable[[str], Agency], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The audit reads each bucket through posture.reading: patch the name it calls.
    from backups.services.posture import reading

    first, second = new_agency("first"), new_agency("second")
    crashing = first.s3_location("Crashing")
    good = [first.s3_location("A"), second.s3_location("B")]
    broken = first.s3_location("Broken")
    StorageLocation.objects.filter(pk=broken.pk).update(credentials_sealed=b"\x01" + b"0" * 40)
    real_store = reading.bucket_settings_store

    def store(location: StorageLocation) -> Any:
        if location.pk == crashing.pk:
            raise RuntimeError("a bug in one location's path")
        return real_store(location)

    monkeypatch.setattr(reading, "bucket_settings_store", store)
    now = timezone.now()

    audits = posture_audit_all(now=now)

    by_location = {a.location_id: a for a in audits}
    # The crashing location (audited first, lowest pk) did not stop the ones after it.
    assert set(by_location) == {good[0].pk, good[1].pk, broken.pk}
    assert all(by_location[loc.pk].reachable for loc in good)
    assert not by_location[broken.pk].reachable  # credentials that no longer unseal
    assert {a.organization_id for a in audits} == {first.org.pk, second.org.pk}
    # A re-delivered daily task adds nothing; the next day audits again.
    assert posture_audit_all(now=now + timedelta(hours=1)) == []
    assert len(posture_audit_all(now=now + timedelta(days=1))) == 3


def test_tasks_audit_on_demand_and_daily(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    audit_id = location_audit_task(str(location.public_id))
    assert PostureAudit.objects.get(public_id=audit_id).trigger == "manual"
    assert location_audit_task(str(agency.primary.public_id)) is None
    assert location_audit_task("not-a-uuid") is None
    assert posture_audit_all_task() == 1
    assert posture_audit_all_task() == 0
    from agencyops.celery import app

    entry = app.conf.beat_schedule["posture-audit-all"]
    assert entry["task"] == "backups.tasks.posture_audit_all_task"


def test_latest_audits_in_two_queries_worst_first(
    agency: Agency, django_assert_num_queries: Any
) -> None:
    locations = [agency.s3_location(f"L{i}", create_bucket=False) for i in range(3)]
    now = timezone.now()
    newest = {}
    for location in locations:
        for day in range(3):
            audit = PostureAudit.objects.create(
                organization=agency.org,
                location=location,
                trigger="scheduled",
                audited_at=now - timedelta(days=3 - day),
            )
            for check, severity in (("logging", "medium"), ("versioning", "critical")):
                PostureFinding.objects.create(
                    organization=agency.org,
                    audit=audit,
                    location=location,
                    check_name=check,
                    severity=severity,
                    message=check,
                )
        newest[location.pk] = audit
    with django_assert_num_queries(2):
        found = latest_audits([loc.pk for loc in locations])
        severities = {pk: [f.severity for f in a.findings.all()] for pk, a in found.items()}
    assert {pk: a.pk for pk, a in found.items()} == {pk: a.pk for pk, a in newest.items()}
    assert set(map(tuple, severities.values())) == {("critical", "medium")}
    assert latest_audits([]) == {}


# --- API ---


def test_api_audits_now_and_fixes(agency: Agency, as_user: Any) -> None:
    location = agency.s3_location("Backups", credentials=SECRET_CREDENTIALS)
    api = as_user(agency.admin)

    created = api.post("/api/v1/posture-audits/", {"location": str(location.public_id)})

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["location"] == str(location.public_id)
    assert body["reachable"] is True
    assert body["trigger"] == "manual"
    assert body["requested_by"] == agency.admin.username
    assert body["facts"]["versioning"] == "Disabled"
    findings = {f["check"]: f for f in body["findings"]}
    assert findings["versioning"]["severity"] == "critical"
    assert findings["versioning"]["fix_action"] == "enable_versioning"
    assert findings["mfa_delete"]["fix_action"] is None
    assert body["findings"][0]["severity"] == "critical"  # worst first

    fixed = api.post(
        "/api/v1/posture-fixes/",
        {"location": str(location.public_id), "action": "enable_versioning"},
    )
    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["succeeded"] is True
    assert fixed.json()["audit"]["trigger"] == "after_fix"
    assert "versioning" not in {f["check"] for f in fixed.json()["audit"]["findings"]}

    listed = api.get(f"/api/v1/posture-audits/?location={location.public_id}").json()
    assert [a["trigger"] for a in listed["results"]] == ["after_fix", "manual"]
    fixes = api.get("/api/v1/posture-fixes/").json()["results"]
    assert [f["action"] for f in fixes] == ["enable_versioning"]
    everything = json.dumps([body, fixed.json(), listed, fixes])
    for secret in SECRET_CREDENTIALS.values():
        assert secret not in everything


def test_api_refuses_bad_input_and_leads(agency: Agency, as_user: Any) -> None:
    location = agency.s3_location("Backups")
    api = as_user(agency.admin)
    url = "/api/v1/posture-fixes/"

    unknown = api.post(url, {"location": str(location.public_id), "action": "nuke"})
    assert unknown.status_code == 400
    assert "action" in unknown.json()["fields"]
    local = api.post(url, {"location": str(agency.primary.public_id), "action": "enable_logging"})
    assert local.status_code == 400
    assert "location" in local.json()["fields"]
    escape = api.post(
        url,
        {"location": str(location.public_id), "action": "enable_logging", "log_prefix": "../x"},
    )
    assert escape.status_code == 400
    assert "log_prefix" in escape.json()["fields"]
    local_audit = api.post("/api/v1/posture-audits/", {"location": str(agency.primary.public_id)})
    assert local_audit.status_code == 400

    lead = as_user(_lead(agency))
    body = {"location": str(location.public_id), "action": "enable_versioning"}
    assert lead.post(url, body).status_code == 403
    assert (
        lead.post("/api/v1/posture-audits/", {"location": str(location.public_id)}).status_code
        == 403
    )
    assert not PostureFix.objects.exists()
    assert not PostureAudit.objects.exists()


def test_api_list_query_count_is_pinned(agency: Agency, as_user: Any) -> None:
    def grow(n: int) -> None:
        for _ in range(n):
            location = agency.s3_location(
                f"L{StorageLocation.objects.count()}", create_bucket=False
            )
            audit = PostureAudit.objects.create(
                organization=agency.org,
                location=location,
                trigger="manual",
                requested_by=agency.admin,
            )
            for check in ("logging", "versioning"):
                PostureFinding.objects.create(
                    organization=agency.org,
                    audit=audit,
                    location=location,
                    check_name=check,
                    severity="medium",
                    message=check,
                )
            PostureFix.objects.create(
                organization=agency.org,
                location=location,
                action="enable_logging",
                requested_by=agency.admin,
            )

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = as_user(agency.admin).get(url)
        assert response.status_code == 200
        assert response.json()["count"] >= 2
        return len(queries)

    grow(2)
    first = (count("/api/v1/posture-audits/"), count("/api/v1/posture-fixes/"))
    grow(5)
    # membership + count + page (+ the findings prefetch for audits)
    assert (count("/api/v1/posture-audits/"), count("/api/v1/posture-fixes/")) == first == (4, 3)


def test_leads_read_shared_locations_posture_only(agency: Agency, as_user: Any) -> None:
    shared = agency.s3_location("Shared", create_bucket=False)
    other_client = clients_services.client_create(actor=agency.actor, name="Someone else")
    dedicated = clients_services.location_create(
        actor=agency.actor,
        name="Dedicated",
        kind="s3",
        provider="aws",
        bucket="dedicated-bucket",
        client=other_client,
        credentials={"access_key_id": "k", "secret_access_key": "s"},
    )
    for location in (shared, dedicated):
        PostureAudit.objects.create(organization=agency.org, location=location, trigger="manual")
    lead = as_user(_lead(agency))
    listed = lead.get("/api/v1/posture-audits/").json()
    assert [a["location"] for a in listed["results"]] == [str(shared.public_id)]
    hidden = PostureAudit.objects.get(location=dedicated)
    assert lead.get(f"/api/v1/posture-audits/{hidden.public_id}/").status_code == 404


# --- the page ---


def _page(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def test_page_lists_findings_with_fix_buttons_for_admins_only(agency: Agency) -> None:
    location = agency.s3_location("Backups")
    url = f"/locations/{location.public_id}/posture/"
    admin = _page(agency.admin)

    empty = admin.get(url)
    assert empty.status_code == 200
    assert "Not audited yet" in empty.content.decode()

    audited = admin.post(url + "audit/")
    assert audited.status_code == 302
    html = admin.get(url).content.decode()
    assert "Versioning is off" in html
    assert 'data-fix="enable_versioning"' in html
    assert 'id="audit-now"' in html
    assert "csrfmiddlewaretoken" in html

    lead_user = _lead(agency)
    lead_html = _page(lead_user).get(url).content.decode()
    assert "Versioning is off" in lead_html
    assert "data-fix=" not in lead_html
    assert 'id="audit-now"' not in lead_html
    refused = _page(lead_user).post(url + "fix/", {"action": "enable_versioning"})
    assert refused.status_code == 403
    assert not PostureFix.objects.exists()

    fixed = admin.post(url + "fix/", {"action": "enable_versioning"}, follow=True)
    assert fixed.status_code == 200
    assert "Enable versioning: done" in fixed.content.decode()
    assert "Versioning is off" not in fixed.content.decode()
    assert PostureFix.objects.get().succeeded


def test_page_of_another_organization_or_ungranted_client_is_404(
    agency: Agency, new_agency: Callable[[str], Agency]
) -> None:
    theirs = new_agency("theirs").s3_location("Theirs", create_bucket=False)
    assert _page(agency.admin).get(f"/locations/{theirs.public_id}/posture/").status_code == 404
    assert (
        _page(agency.admin).post(f"/locations/{theirs.public_id}/posture/fix/").status_code == 404
    )
    other_client = clients_services.client_create(actor=agency.actor, name="Someone else")
    dedicated = clients_services.location_create(
        actor=agency.actor,
        name="Dedicated",
        kind="s3",
        provider="aws",
        bucket="dedicated-bucket",
        client=other_client,
        credentials=SECRET_CREDENTIALS,
    )
    lead = _page(_lead(agency))
    assert lead.get(f"/locations/{dedicated.public_id}/posture/").status_code == 404


def test_admin_shows_audits_findings_and_fixes_read_only(agency: Agency) -> None:
    location = agency.s3_location("Backups", credentials=SECRET_CREDENTIALS)
    audit = location_audit(location, trigger="manual")
    posture_fix_apply(actor=agency.actor, location=location, action="enable_versioning")
    agency.admin.is_staff = agency.admin.is_superuser = True
    agency.admin.save()
    page = _page(agency.admin)
    for model in ("postureaudit", "posturefinding", "posturefix"):
        listing = page.get(f"/admin/backups/{model}/")
        assert listing.status_code == 200, model
        assert page.get(f"/admin/backups/{model}/add/").status_code == 403, model
    detail = page.get(f"/admin/backups/postureaudit/{audit.pk}/change/").content.decode()
    assert "Versioning is off" in detail
    assert SECRET_CREDENTIALS["secret_access_key"] not in detail
