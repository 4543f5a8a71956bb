"""Procurement evidence: facts match the database, the signature verifies offline and any
changed byte fails, the document conforms to its published schema, the query count does not
grow with the datasets, who may read it, one access event per read, the processing record,
the page and the commands."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # ships no type hints
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from backups.models import (
    BackupPolicy,
    DatasetProtection,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    RestoreRun,
    Snapshot,
)
from backups.services import (
    backup_run_execute,
    backup_run_request,
    policy_update,
    restore_run_execute,
)
from backups.services.drills import drill_start
from backups.services.posture import location_audit
from clients import services as clients_services
from clients.models import AccessGrant, Client, Dataset, StorageLocation
from kernel.tenancy import Actor, actor_for_user
from lifecycle import services
from lifecycle.models import (
    AccessChainCheckpoint,
    AccessEvent,
    DeletionCertificate,
    PendingAccessEvent,
)
from lifecycle.services import evidence_json_schema
from tests.agencyops.conftest import w
from tests.backups.conftest import make_agency, sample_files
from tests.conftest import World
from tests.factories import ClientFactory, LocationFactory, UserFactory
from tests.lifecycle.conftest import append_events, raw_sql
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, s3_endpoint

__all__ = ["s3_endpoint", "w"]  # fixtures


def api_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def evidence_url(client: Client) -> str:
    return f"/api/v1/clients/{client.public_id}/evidence/"


def _actor(user: Any) -> Actor:
    actor = actor_for_user(user)
    assert actor is not None
    return actor


def _evidence_events(org: Any) -> list[dict[str, Any]]:
    """Evidence reads recorded so far (pending: the test's transaction never commits)."""
    return [
        p.payload
        for p in PendingAccessEvent.objects.filter(organization=org).order_by("id")
        if p.payload["action"] == "evidence_read"
    ]


# --- a client with everything the evidence reports on ---


class Scene:
    def __init__(self, tmp_path: Path, s3_endpoint: str) -> None:
        agency = make_agency(s3_endpoint, slug="evid")
        self.agency = agency
        self.org = agency.org
        self.client = agency.client
        self.admin = agency.admin
        actor = agency.actor
        self.admin2 = UserFactory(username="evid-admin2")
        clients_services.membership_add(actor=actor, user=self.admin2, role="admin")
        self.auditor = UserFactory(username="evid-auditor")
        clients_services.membership_add(actor=actor, user=self.auditor, role="auditor")
        self.lead = UserFactory(username="evid-lead")
        clients_services.membership_add(actor=actor, user=self.lead, role="lead")
        self.member = UserFactory(username="evid-member")
        clients_services.membership_add(actor=actor, user=self.member, role="member")
        clients_services.client_update(
            actor=actor,
            client=self.client,
            contact_name="Dana Buyer",
            contact_email="dana@client.test",
        )
        # targets: a second local disk and an offsite bucket (moto), for every default policy
        self.disk = agency.local_location("Backup disk")
        self.bucket = agency.s3_location("Offsite bucket")
        for policy in BackupPolicy.objects.filter(organization=self.org):
            policy_update(actor=actor, policy=policy, targets=[self.disk, self.bucket])
        engagement = clients_services.engagement_create(
            actor=actor, client=self.client, name="Model build", starts_on=date(2026, 1, 1)
        )
        self.engagement = engagement
        self.training = agency.dataset(
            "Training data",
            files=sample_files(),
            engagement=engagement,
            contains_personal_data=True,
        )
        self.notes = agency.dataset(
            "Project notes", kind="project_docs", files={"notes.md": b"# notes\n"}
        )
        self.old = agency.dataset("Old export", files={"export.csv": b"id\n1\n"})
        for dataset in (self.training, self.training, self.notes, self.old):
            run = backup_run_request(actor=actor, dataset=dataset, enqueue=False)
            done = backup_run_execute(str(run.public_id))
            assert done is not None
            assert done.status == "succeeded", done.error
        # a restore drill and a restore of the training data
        drill = drill_start(actor=actor, dataset=self.training, enqueue=False)
        self.drill = restore_run_execute(str(drill.public_id), final_attempt=True)
        assert self.drill is not None
        assert self.drill.status == "succeeded", (self.drill.error, self.drill.issues)
        snapshot = Snapshot.objects.filter(dataset=self.training, location=self.disk).first()
        assert snapshot is not None
        agency.restore(snapshot, tmp_path / "restored")
        self.restore = RestoreRun.objects.get(dataset=self.training, is_drill=False)
        # the offsite bucket's posture, read from moto
        self.audit = location_audit(self.bucket, trigger="manual")
        # grants: the lead on the whole client, the member on one dataset
        self.lead_grant = clients_services.grant_create(
            actor=actor,
            grantee=self.lead,
            client=self.client,
            permission="restore",
            reason="on call",
        )
        self.member_grant = clients_services.grant_create(
            actor=actor,
            grantee=self.member,
            client=self.client,
            dataset=self.notes,
            permission="view",
            reason="docs",
        )
        # obligations, a released hold, and a completed deletion of the old export
        self.obligation = services.obligation_create(
            actor=actor,
            client=self.client,
            dataset=self.notes,
            kind="retain_for",
            retain_years=7,
            source="regulation",
            source_reference="HGB §257",
        )
        hold = services.legal_hold_place(
            actor=actor, client=self.client, dataset=self.notes, reason="audit request"
        )
        self.hold = services.legal_hold_release(actor=actor, hold=hold)
        request = services.deletion_request_create(
            actor=actor, client=self.client, dataset=self.old, reason="client asked"
        )
        services.deletion_request_approve(
            actor=_actor(self.admin2), request=request, comment="ok", enqueue=False
        )
        done_request = services.deletion_request_execute(str(request.public_id))
        assert done_request.state == "verified", (done_request.error, done_request.verification)
        self.certificate = DeletionCertificate.objects.get(request=done_request)
        # the record of processing, and a procurement token
        services.processing_record_update(
            actor=actor,
            client=self.client,
            processor_contact="Agency GmbH, Berlin, privacy@agency.test",
            processor_dpo="Pat DPO",
            processing_categories=["storage and backup", "model training"],
            transfers=[
                {
                    "country": "US",
                    "recipient": "Offsite storage provider",
                    "safeguard": "standard_contractual_clauses",
                    "documentation": "SCC module 3",
                }
            ],
            security_measures="Encryption at rest, least privilege, four eyes.",
        )
        self.token, _ = services.evidence_token_issue(
            actor=actor,
            client=self.client,
            name="Client procurement",
            expires_at=timezone.now() + timedelta(days=30),
        )
        # every event recorded so far into the chain, as the worker would
        services.access_events_drain(self.org.pk)
        assert not PendingAccessEvent.objects.filter(organization=self.org).exists()


@pytest.fixture
def scene(db: Any, tmp_path: Path, s3_endpoint: str, settings: Any) -> Scene:
    settings.AGENCYOPS_SCRATCH_DIR = tmp_path / "scratch"
    return Scene(tmp_path, s3_endpoint)


def _by(entries: list[dict[str, Any]], key: str = "dataset") -> dict[str, dict[str, Any]]:
    return {entry[key]: entry for entry in entries}


def test_the_evidence_states_what_the_database_holds(scene: Scene) -> None:
    response = api_as(scene.admin).get(evidence_url(scene.client))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    envelope = json.loads(response.content)
    doc = envelope["document"]
    client = scene.client
    client.refresh_from_db()

    assert doc["type"] == "agencyops.evidence"
    assert doc["schema_version"] == "1.0"
    assert doc["organization"] == {"id": str(scene.org.public_id), "name": scene.org.name}
    assert doc["client"]["id"] == str(client.public_id)
    assert doc["client"]["contact_email"] == "dana@client.test"
    assert [e["id"] for e in doc["engagements"]] == [str(scene.engagement.public_id)]

    # inventory: every dataset of the client, deleted ones too, as registered
    datasets = {str(d.public_id): d for d in Dataset.objects.filter(client=client)}
    inventory = _by(doc["inventory"], "id")
    assert set(inventory) == set(datasets)
    assert len(datasets) == 3
    for ref, dataset in datasets.items():
        entry = inventory[ref]
        assert entry["name"] == dataset.name
        assert entry["kind"] == dataset.kind
        assert entry["classification"] == dataset.classification
        assert entry["contains_personal_data"] is dataset.contains_personal_data
        assert entry["primary_location"] == str(dataset.location.public_id)
        assert entry["lifecycle_state"] == dataset.lifecycle_state
        assert entry["rpo_seconds"] == dataset.rpo.total_seconds()
        assert entry["rto_seconds"] == dataset.rto.total_seconds()
        assert entry["engagement"] == (
            str(dataset.engagement.public_id) if dataset.engagement else None
        )
    assert inventory[str(scene.old.public_id)]["lifecycle_state"] == "deleted"
    assert inventory[str(scene.training.public_id)]["contains_personal_data"] is True

    # locations: the primary directory, the disk and the bucket, with the bucket's posture
    locations = _by(doc["storage_locations"], "id")
    primary, disk, bucket = scene.agency.primary, scene.disk, scene.bucket
    assert set(locations) == {str(loc.public_id) for loc in (primary, disk, bucket)}
    assert locations[str(primary.public_id)]["roles"] == ["primary"]
    assert locations[str(bucket.public_id)]["roles"] == ["backup_target"]
    assert locations[str(primary.public_id)]["posture"] is None  # directories: not audited
    assert locations[str(disk.public_id)]["medium"] == "filesystem"
    assert locations[str(bucket.public_id)]["medium"] == bucket.provider
    posture = locations[str(bucket.public_id)]["posture"]
    audit = PostureAudit.objects.filter(location=bucket).latest("audited_at")
    assert posture["audited_at"] == audit.audited_at.isoformat()
    assert posture["versioning"] == audit.facts.get("versioning")
    findings = PostureFinding.objects.filter(audit=audit)
    assert sorted(f["check"] for f in posture["findings"]) == sorted(f.check_name for f in findings)
    assert findings.exists()  # moto's bucket has no versioning: a finding to report
    assert doc["summary"]["open_posture_findings"] == findings.count()
    for secret in (TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY):
        assert secret not in response.content.decode()

    # policies and protection: the last good snapshot per target, from the snapshots stored
    protection = _by(doc["protection"])
    training = protection[str(scene.training.public_id)]
    policy = DatasetProtection.objects.get(dataset=scene.training).policy
    assert policy is not None
    assert training["policy"] == str(policy.public_id)
    (policy_entry,) = [p for p in doc["backup_policies"] if p["id"] == training["policy"]]
    assert policy_entry["targets"] == [
        str(t.location.public_id) for t in PolicyTarget.objects.filter(policy=policy)
    ]
    targets = _by(training["targets"], "location")
    for location in (disk, bucket):
        stored = Snapshot.objects.filter(dataset=scene.training, location=location)
        entry = targets[str(location.public_id)]
        assert entry["last_snapshot_at"] == stored.latest("taken_at").taken_at.isoformat()
        assert entry["restorable_snapshots"] == stored.count() == 2
        assert entry["fresh"] is True
    rule = training["three_two_one"]
    assert (rule["copies"], rule["media"], rule["offsite"], rule["met"]) == (3, 2, True, True)
    assert rule["reasons"] == []
    assert training["rpo_met"] is True
    assert protection[str(scene.old.public_id)]["three_two_one"]["retired"] is True

    # restore drills and restores, measured against the RTO
    tests = _by(doc["restore_tests"])[str(scene.training.public_id)]
    assert scene.drill is not None
    drill = RestoreRun.objects.get(pk=scene.drill.pk)
    assert drill.measured_duration is not None
    assert tests["last_drill"]["id"] == str(drill.public_id)
    assert tests["last_drill"]["status"] == "succeeded"
    assert tests["last_drill"]["measured_seconds"] == round(drill.measured_duration.total_seconds())
    assert tests["last_drill"]["rto_met"] is True
    assert tests["last_drill"]["files_verified"] == drill.files_verified == len(sample_files())
    assert tests["drill_within_period"] is True
    assert tests["last_restore"]["id"] == str(scene.restore.public_id)
    assert tests["last_restore"]["status"] == "succeeded"
    assert tests["last_restore"]["rto_met"] is True
    assert _by(doc["restore_tests"])[str(scene.notes.public_id)]["last_drill"] is None

    # encryption: one key per dataset; the deleted dataset's key destroyed
    keys = _by(doc["encryption"]["keys"])
    live_key = DatasetProtection.objects.get(dataset=scene.training).wrapped_key
    assert keys[str(scene.training.public_id)] == {
        "dataset": str(scene.training.public_id),
        "state": "active",
        "key_id": hashlib.sha256(bytes(live_key)).hexdigest()[:16],
        "destroyed_at": None,
    }
    old_protection = DatasetProtection.objects.get(dataset=scene.old)
    assert old_protection.key_destroyed_at is not None
    assert keys[str(scene.old.public_id)]["state"] == "destroyed"
    assert keys[str(scene.old.public_id)]["destroyed_at"] == (
        old_protection.key_destroyed_at.isoformat()
    )
    assert (
        keys[str(scene.notes.public_id)]["key_id"] != keys[str(scene.training.public_id)]["key_id"]
    )
    assert doc["encryption"]["key_custody"]["master_key_source"] == "environment"

    # who can touch it: the live grants, the organization-wide roles, the procurement token
    grants = _by(doc["access"]["grants"], "id")
    live = AccessGrant.objects.active(timezone.now()).filter(client=client)
    assert set(grants) == {str(g.public_id) for g in live}
    assert grants[str(scene.lead_grant.public_id)]["grantee"] == "evid-lead"
    assert grants[str(scene.lead_grant.public_id)]["expires_at"] == (
        scene.lead_grant.expires_at.isoformat()
    )
    assert grants[str(scene.member_grant.public_id)]["dataset"] == str(scene.notes.public_id)
    assert {(m["username"], m["role"]) for m in doc["access"]["organization_wide"]} == {
        ("evid-owner", "owner"),
        ("evid-admin", "admin"),
        ("evid-admin2", "admin"),
        ("evid-auditor", "auditor"),
    }
    assert [t["id"] for t in doc["access"]["procurement_tokens"]] == [str(scene.token.public_id)]

    # the access summary counts the client's events per month, actor and action
    events = AccessEvent.objects.filter(organization=scene.org, client=client)
    summary = doc["access_summary"]
    assert summary["total_events"] == events.count() > 0
    counted: Counter[tuple[str, str]] = Counter()
    for row in summary["by_month"]:
        counted[(row["actor"], row["action"])] += row["events"]
    assert counted == Counter((e.actor_label, e.action) for e in events)
    assert counted[("evid-admin", "grant")] == 2
    assert counted[("evid-admin", "restore_drill")] == 1
    assert summary["chain"]["ok"] is True
    assert summary["chain"]["events"] == AccessEvent.objects.filter(organization=scene.org).count()

    # obligations, holds, certificates, processing record
    assert [o["id"] for o in doc["obligations"]] == [str(scene.obligation.public_id)]
    assert scene.hold.released_at is not None
    assert doc["obligations"][0]["retain_years"] == 7
    assert doc["legal_holds"] == [
        {
            "id": str(scene.hold.public_id),
            "dataset": str(scene.notes.public_id),
            "reason": "audit request",
            "active": False,
            "placed_at": scene.hold.placed_at.isoformat(),
            "released_at": scene.hold.released_at.isoformat(),
        }
    ]
    (certificate,) = doc["deletion_certificates"]
    assert certificate["id"] == str(scene.certificate.public_id)
    assert certificate["sha256"] == scene.certificate.sha256
    assert certificate["signature"] == scene.certificate.signature
    assert certificate["verification"] == "passed"
    assert certificate["datasets"] == [{"id": str(scene.old.public_id), "name": "Old export"}]
    record = doc["processing_record"]
    assert record["processor"]["name"] == scene.org.name
    assert record["processor"]["dpo"] == "Pat DPO"
    assert record["controller"] == {
        "name": client.name,
        "contact": "Dana Buyer <dana@client.test>",
        "representative": "",
        "dpo": "",
    }
    assert record["categories_of_processing"] == ["storage and backup", "model training"]
    assert record["transfers"][0]["safeguard"] == "standard_contractual_clauses"
    assert any(
        "approval of 1 admin" in m for m in record["security_measures"]["enforced_by_system"]
    )

    assert doc["summary"] == {
        "datasets": 3,
        "datasets_live": 2,
        "datasets_with_personal_data": 1,
        "three_two_one_met": sum(1 for p in doc["protection"] if p["three_two_one"]["met"]),
        "rpo_met": sum(1 for p in doc["protection"] if p["rpo_met"]),
        "drilled_within_period": 1,
        "open_posture_findings": findings.count(),
        "deletion_certificates": 1,
    }

    # the document conforms to the schema it publishes
    jsonschema.Draft202012Validator(evidence_json_schema()).validate(envelope)

    # exactly one access event for the read: the admin, the client, the document's hash
    (event,) = _evidence_events(scene.org)
    assert (event["actor_kind"], event["actor_label"]) == ("user", "evid-admin")
    assert event["client_ref"] == str(client.public_id)
    assert (
        event["details"]["document_sha256"]
        == hashlib.sha256(services.canonical_json(doc)).hexdigest()
    )


def _every_property(schema: Any, path: str = "") -> list[tuple[str, Any]]:
    found = []
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
            found += _every_property(sub, f"{path}.{name}")
        if "items" in schema:
            found += _every_property(schema["items"], f"{path}[]")
    return found


def test_every_field_of_the_schema_is_described_and_closed() -> None:
    schema = evidence_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    properties = _every_property(schema)
    assert len(properties) > 150
    for path, sub in properties:
        assert sub.get("description"), f"{path} has no description"
        kinds = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        if "object" in kinds:
            assert sub["additionalProperties"] is False, path
            assert sorted(sub["required"]) == sorted(sub["properties"]), path


def test_the_schema_is_published_and_in_the_openapi_document(w: World) -> None:
    for user in (w.owner, w.lead, w.member, w.auditor, w.ungranted_lead):
        response = api_as(user).get("/api/v1/evidence/schema/")
        assert response.status_code == 200
        assert response.json() == evidence_json_schema()
    openapi = APIClient().get("/api/schema/?format=json").json()
    operation = openapi["paths"]["/api/v1/clients/{client_id}/evidence/"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    document = body["properties"]["document"]
    assert "nullable" in json.dumps(document)  # converted to OpenAPI 3.0
    assert set(document["properties"]) == set(
        evidence_json_schema()["properties"]["document"]["properties"]
    )
    assert document["properties"]["inventory"]["items"]["properties"]["rpo_seconds"]["description"]


# --- signature ---


RECIPE = """
import base64, json, sys; from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
e = json.load(open(sys.argv[1], encoding="utf-8"))
Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[2])).verify(base64.b64decode(e["signature"]["value"]), json.dumps(e["document"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
"""  # noqa: E501  # the three lines of the README, verbatim


def test_saved_evidence_verifies_offline_and_any_changed_byte_fails(
    w: World, tmp_path: Path
) -> None:
    response = api_as(w.auditor).get(evidence_url(w.client_b))
    assert response.status_code == 200, response.content
    raw = response.content
    key = api_as(w.auditor).get("/api/v1/signing-key/").json()["public_key"]
    path = tmp_path / "evidence.json"
    path.write_bytes(raw)

    assert services.evidence_verify(raw, public_key=key) == (
        True,
        f"the evidence of {w.client_b.name} generated at "
        f"{json.loads(raw)['document']['generated_at']} is intact and its signature verifies",
    )
    call_command("verify_evidence", str(path), "--public-key", key)
    # the documented three-line recipe, with nothing but `cryptography`, in a fresh process
    recipe = subprocess.run(
        [sys.executable, "-c", RECIPE, str(path), key], capture_output=True, text=True, check=False
    )
    assert recipe.returncode == 0, recipe.stderr

    # every single changed byte is caught
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        ok, _reason = services.evidence_verify(bytes(tampered), public_key=key)
        assert not ok, (position, chr(raw[position]))
    tampered = bytearray(raw)
    tampered[raw.index(b'"name":"') + 8] ^= 0x01
    path.write_bytes(bytes(tampered))
    with pytest.raises(CommandError, match="INVALID"):
        call_command("verify_evidence", str(path), "--public-key", key)
    recipe = subprocess.run(
        [sys.executable, "-c", RECIPE, str(path), key], capture_output=True, text=True, check=False
    )
    assert recipe.returncode != 0  # re-canonicalized, the edited content still fails

    # another organization's key: refused, even though the file is intact
    other = services.signing_key_ensure(w.other_org).public_key
    assert services.evidence_verify(raw, public_key=other) == (
        False,
        "signed by another key than the published one",
    )
    # a signature moved onto another document fails too
    envelope = json.loads(raw)
    envelope["document"]["client"]["name"] = "Someone else"
    forged = services.evidence_file_bytes(envelope)
    assert services.evidence_verify(forged, public_key=key) == (
        False,
        "the signature does not verify",
    )


def test_verify_evidence_command_reports_unreadable_files(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(32)).decode()  # pinned: the file is what is refused here
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("verify_evidence", str(tmp_path / "missing.json"), "--public-key", key)
    path = tmp_path / "bad.json"
    path.write_text("{}")
    with pytest.raises(CommandError, match="INVALID: not an evidence document"):
        call_command("verify_evidence", str(path), "--public-key", key)


# --- who reads it, and one event per read ---


def test_who_may_read_evidence(w: World) -> None:
    url = evidence_url(w.client)
    for user in (w.owner, w.admin, w.auditor, w.lead):  # the lead holds a grant on client A
        assert api_as(user).get(url).status_code == 200, user
    # a member of client A (restore grant) may not read evidence
    response = api_as(w.member).get(url)
    assert response.status_code == 403
    assert "Members may not read evidence" in json.loads(response.content)["detail"]
    # without a grant, another organization, or through one dataset's grant only: 404
    assert api_as(w.ungranted_lead).get(url).status_code == 404
    assert api_as(w.other_admin).get(url).status_code == 404
    clients_services.grant_create(
        actor=Actor.system(w.org),
        grantee=w.ungranted_lead,
        client=w.client_b,
        dataset=w.dataset_b,
        permission="view",
        reason="one dataset only",
    )
    assert api_as(w.ungranted_lead).get(evidence_url(w.client_b)).status_code == 404
    assert api_as(w.owner).get("/api/v1/clients/not-a-uuid/evidence/").status_code == 404
    assert APIClient().get(url).status_code == 401
    # writes: the evidence is read-only
    assert api_as(w.owner).post(url, {}, format="json").status_code == 405
    # each successful read is one event, a refused read none
    events = _evidence_events(w.org)
    assert [(e["actor_label"], e["client_ref"]) for e in events] == [
        (name, str(w.client.public_id)) for name in ("owner", "admin", "auditor", "lead")
    ]
    assert all(e["details"]["via"] == "api" for e in events)


def test_a_committed_read_is_one_event_in_the_chain(
    w: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(w.lead).get(evidence_url(w.client), HTTP_USER_AGENT="procurement-bot")
    assert response.status_code == 200
    (event,) = AccessEvent.objects.filter(organization=w.org, action="evidence_read")
    assert (event.actor_kind, event.actor_label, event.client_id) == ("user", "lead", w.client.pk)
    assert event.user_agent == "procurement-bot"
    assert event.source_ip == "127.0.0.1"
    assert services.access_log_verify(w.org).ok


# --- the access chain, as the evidence reports it ---


def test_chain_is_verified_from_its_checkpoint_and_a_rewrite_is_caught(w: World) -> None:
    append_events(w.org, 5)
    now = timezone.now()
    first = services.access_chain_status(w.org, now=now)
    assert first["ok"] is True
    assert first["verified_from"] == 1  # no checkpoint yet: the whole chain
    total = AccessEvent.objects.filter(organization=w.org).count()
    assert first["events"] == total
    checkpoint = AccessChainCheckpoint.objects.get(organization=w.org)
    assert checkpoint.seq == total

    append_events(w.org, 3)
    second = services.access_chain_status(w.org, now=now + timedelta(minutes=1))
    assert second == {
        "ok": True,
        "events": total + 3,
        "verified_from": total,
        "walked_at": now.isoformat(),
        "broken_at": None,
        "reason": "",
    }

    # an event after the checkpoint altered: caught where it happened
    append_events(w.org, 3)
    victim = total + 5
    raw_sql(
        "UPDATE {table} SET details = %s WHERE organization_id = %s AND seq = %s",
        [json.dumps({"n": 999}), w.org.pk, victim],
    )
    third = services.access_chain_status(w.org, now=now + timedelta(minutes=2))
    assert (third["ok"], third["broken_at"], third["verified_from"]) == (False, victim, total + 3)
    assert "altered" in third["reason"]
    # the checkpoint stays where the chain was last good
    assert AccessChainCheckpoint.objects.get(organization=w.org).seq == total + 3

    # an event before the checkpoint altered: the next whole walk (daily) names it
    raw_sql(
        "UPDATE {table} SET details = %s WHERE organization_id = %s AND seq = %s",
        [json.dumps({"n": 998}), w.org.pk, 2],
    )
    fourth = services.access_chain_status(w.org, now=now + timedelta(days=2))
    assert (fourth["ok"], fourth["broken_at"], fourth["verified_from"]) == (False, 2, 1)


def test_a_rewritten_chain_no_longer_reaches_the_checkpoint(w: World) -> None:
    append_events(w.org, 4)
    now = timezone.now()
    assert services.access_chain_status(w.org, now=now)["ok"]
    checkpoint = AccessChainCheckpoint.objects.get(organization=w.org)
    # an attacker rewrites the last link known good (hash recomputed or not, it moved)
    raw_sql(
        "UPDATE {table} SET hash = %s WHERE organization_id = %s AND seq = %s",
        ["f" * 64, w.org.pk, checkpoint.seq],
    )
    status = services.access_chain_status(w.org, now=now + timedelta(minutes=1))
    assert (status["ok"], status["broken_at"]) == (False, checkpoint.seq)
    assert "rewritten" in status["reason"]


# --- the record of processing ---


def test_admins_edit_the_processing_record_and_it_is_validated(w: World) -> None:
    url = f"/api/v1/clients/{w.client.public_id}/evidence/processing-record/"
    empty = api_as(w.lead).get(url)
    assert empty.status_code == 200
    assert empty.json()["transfers"] == []
    assert empty.json()["updated_at"] is None
    body = {
        "controller_dpo": "dpo@client.test",
        "processing_categories": ["hosting", "backup"],
        "transfers": [{"country": "us", "recipient": "Bucket host", "safeguard": "certification"}],
    }
    response = api_as(w.admin).patch(url, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["transfers"] == [
        {
            "country": "US",
            "recipient": "Bucket host",
            "safeguard": "certification",
            "documentation": "",
        }
    ]
    assert response.json()["updated_by"] == "admin"
    doc = json.loads(api_as(w.owner).get(evidence_url(w.client)).content)["document"]
    assert doc["processing_record"]["controller"]["dpo"] == "dpo@client.test"
    assert doc["processing_record"]["categories_of_processing"] == ["hosting", "backup"]
    assert doc["processing_record"]["transfers"][0]["country"] == "US"

    refused = api_as(w.lead).patch(url, {"controller_dpo": "x"}, format="json")
    assert refused.status_code == 403
    for bad in (
        {"transfers": [{"country": "USA", "recipient": "x", "safeguard": "certification"}]},
        {"transfers": [{"country": "US", "recipient": "x", "safeguard": "trust me"}]},
        {"processing_categories": "not a list"},
    ):
        response = api_as(w.admin).patch(url, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
    assert api_as(w.admin).patch(url, {"client": "x"}, format="json").status_code == 200


# --- constant queries ---


def _bulk_client(org: Any, name: str, n: int, primary: StorageLocation, target: Any) -> Any:
    """A client with `n` datasets, each protected by a policy with one target and holding two
    snapshots there, written in bulk."""
    client = ClientFactory(organization=org, name=name)
    datasets = Dataset.objects.bulk_create(
        Dataset(
            organization=org,
            client=client,
            name=f"dataset {i:04d}",
            kind="raw_client_data",
            location=primary,
            path=f"{name}/{i}",
        )
        for i in range(n)
    )
    policy = BackupPolicy.objects.get(organization=org, default_for="daily")
    DatasetProtection.objects.bulk_create(
        DatasetProtection(organization=org, dataset=d, policy=policy, wrapped_key=bytes(60))
        for d in datasets
    )
    now = timezone.now()
    Snapshot.objects.bulk_create(
        Snapshot(
            organization=org,
            dataset=d,
            location=target,
            manifest_id=f"{d.pk}-{k}",
            taken_at=now - timedelta(hours=k),
        )
        for d in datasets
        for k in range(2)
    )
    return client


def test_query_count_is_the_same_for_10_and_1000_datasets(w: World) -> None:
    from backups.services import policies_create_defaults

    policies_create_defaults(w.org)
    primary = LocationFactory(organization=w.org, name="Primary")
    target = LocationFactory(organization=w.org, name="Target")
    PolicyTarget.objects.create(
        policy=BackupPolicy.objects.get(organization=w.org, default_for="daily"), location=target
    )
    PostureAudit.objects.create(
        organization=w.org, location=target, trigger="manual", facts={"versioning": "Enabled"}
    )
    small = _bulk_client(w.org, "small", 10, primary, target)
    large = _bulk_client(w.org, "large", 1000, primary, target)
    append_events(w.org, 20, client=small)
    append_events(w.org, 20, client=large)
    owner = api_as(w.owner)
    assert owner.get(evidence_url(small)).status_code == 200  # the day's whole-chain walk

    counts = {}
    for client in (small, large, small):
        with CaptureQueriesContext(connection) as queries:
            response = owner.get(evidence_url(client))
        assert response.status_code == 200
        counts[client.name] = len(queries)
        doc = json.loads(response.content)["document"]
        assert doc["summary"]["datasets"] == client.datasets.count()
    assert len(doc["inventory"]) == 10
    assert counts["small"] == counts["large"] == 31, counts


# --- the page and the commands ---


def test_printable_page(w: World) -> None:
    from django.test import Client as PageClient

    page = PageClient()
    page.force_login(w.auditor)
    response = page.get(f"/clients/{w.client_b.public_id}/evidence/")
    assert response.status_code == 200
    html = response.content.decode()
    assert w.client_b.name in html
    assert w.dataset_b.name in html
    assert "Ed25519" in html
    assert "verify_evidence" in html
    (event,) = _evidence_events(w.org)
    assert (event["actor_label"], event["details"]["via"]) == ("auditor", "page")
    page.force_login(w.ungranted_lead)
    assert page.get(f"/clients/{w.client_b.public_id}/evidence/").status_code == 404
    page.force_login(w.member)
    assert page.get(f"/clients/{w.client.public_id}/evidence/").status_code == 403


def test_evidence_command_writes_a_file_that_verifies(w: World, tmp_path: Path) -> None:
    out = tmp_path / "evidence.json"
    call_command("evidence", str(w.client_b.public_id), "--out", str(out))
    raw = out.read_bytes()
    key = services.signing_key_ensure(w.org).public_key
    assert services.evidence_verify(raw, public_key=key)[0]
    assert json.loads(raw)["document"]["client"]["id"] == str(w.client_b.public_id)
    (event,) = _evidence_events(w.org)
    assert (event["actor_kind"], event["details"]["via"]) == ("system", "command")
    call_command("verify_evidence", str(out), "--public-key", key)
    with pytest.raises(CommandError, match="No client"):
        call_command("evidence", "00000000-0000-0000-0000-000000000000", "--out", str(out))


def test_signature_block_names_the_published_key(w: World) -> None:
    raw = api_as(w.owner).get(evidence_url(w.client)).content
    envelope = json.loads(raw)
    # the bytes served are the envelope's canonical form (built around the document's bytes)
    assert raw == services.evidence_file_bytes(envelope)
    signed = services.evidence_read(actor=w.actor(w.auditor), client=w.client)
    assert signed.raw == services.evidence_file_bytes(signed.envelope)
    assert (
        signed.document_sha256
        == hashlib.sha256(services.canonical_json(signed.document)).hexdigest()
    )
    key = services.signing_key_ensure(w.org).public_key
    assert envelope["signature"]["public_key"] == key
    assert envelope["signature"]["algorithm"] == "Ed25519"
    assert envelope["signature"]["key_id"] == hashlib.sha256(base64.b64decode(key)).hexdigest()


def test_a_client_without_data_has_an_empty_but_valid_evidence(w: World) -> None:
    empty = ClientFactory(organization=w.org, name="New client")
    response = api_as(w.admin).get(evidence_url(empty))
    assert response.status_code == 200
    envelope = json.loads(response.content)
    jsonschema.Draft202012Validator(evidence_json_schema()).validate(envelope)
    doc = envelope["document"]
    assert doc["summary"]["datasets"] == 0
    assert doc["inventory"] == doc["protection"] == doc["storage_locations"] == []
    assert doc["access_summary"]["total_events"] == 0
    key = services.signing_key_ensure(w.org).public_key
    assert services.evidence_verify(response.content, public_key=key)[0]
