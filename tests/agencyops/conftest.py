from __future__ import annotations

import pytest

from tests.conftest import World


@pytest.fixture
def w(world: World) -> World:
    """The world plus objects of client_b, which nobody but admins may see."""
    from clients import services
    from kernel.tenancy import Actor
    from tests.factories import EngagementFactory

    world.engagement_b = EngagementFactory(client=world.client_b)
    world.grant_b = services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.member,
        client=world.client_b,
        permission="view",
        reason="client B view for member",
    )
    world.token, _ = services.api_token_issue(user=world.owner)
    # client B's folder on the shared bucket (admins, and whoever is granted client B, see it)
    world.namespace_b = services.namespace_assign(
        actor=Actor.system(world.org),
        location=world.location,
        client=world.client_b,
        path="client-b",
    )
    # backup-side rows of client B, written directly: these tests are about who sees them
    from django.utils import timezone

    from backups.models import BackupPolicy, BackupRun, RestoreRun, Snapshot
    from backups.services import policies_create_defaults

    world.policy = policies_create_defaults(world.org)[0]
    world.other_policy = BackupPolicy.objects.create(
        organization=world.other_org, name="theirs", frequency="daily"
    )
    world.run_b = BackupRun.objects.create(
        organization=world.org, dataset=world.dataset_b, trigger="manual", status="succeeded"
    )
    world.snapshot_b = Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset_b,
        location=world.dedicated_location,
        run=world.run_b,
        manifest_id="20260101T000000Z-x",
        taken_at=timezone.now(),
    )
    world.restore_b = RestoreRun.objects.create(
        organization=world.org,
        dataset=world.dataset_b,
        snapshot=world.snapshot_b,
        destination_location=world.dedicated_location,
        destination_path="restores/x",
    )
    # one access-log event on client B's dataset, appended as the worker would
    from lifecycle.services import access_event_payload, access_events_append

    (world.event_b,) = access_events_append(
        [
            access_event_payload(
                organization=world.org,
                action="restore",
                actor=Actor.system(world.org),
                dataset=world.dataset_b,
            )
        ]
    )
    # a lead's pending request for a grant on client B (only admins and the requester see it)
    world.grant_request_b = services.grant_request_create(
        actor=world.actor(world.lead),
        client=world.client_b,
        permission="view",
        reason="covering for a colleague",
    )
    # lifecycle rows of client B: an obligation, a legal hold (released, so the deletion below
    # could be verified), and a verified deletion request with its certificate
    from lifecycle.models import DeletionRequest, LegalHold, RetentionObligation
    from lifecycle.services import deletion_certificate_issue, signing_key_ensure

    world.obligation_b = RetentionObligation.objects.create(
        organization=world.org,
        client=world.client_b,
        kind="retain_until",
        retain_until=timezone.now().date(),
        source="dpa",
    )
    world.hold_b = LegalHold.objects.create(
        organization=world.org, client=world.client_b, reason="litigation"
    )
    world.deletion_request_b = DeletionRequest.objects.create(
        organization=world.org,
        client=world.client_b,
        dataset=world.dataset_b,
        scope="dataset",
        reason="contract ended",
        state="verified",
        verification={"ok": True, "locations": [], "database_keys_destroyed": True},
        plan={"datasets": [], "locations": [], "keys": []},
        verified_at=timezone.now(),
    )
    world.certificate_b = deletion_certificate_issue(world.deletion_request_b)
    world.signing_key = signing_key_ensure(world.org).public_key
    # protection status (3-2-1) and cost: one price override of org A (organization-wide)
    from decimal import Decimal

    from backups.models import StoragePrice

    world.storage_price = StoragePrice.objects.create(
        organization=world.org,
        provider="wasabi",
        storage_class="STANDARD",
        usd_per_gb_month=Decimal("0.0059"),
    )
    # alerts, reviews, notification settings: an alert and a review of client B, and org A's
    # notification settings with a webhook (its URL must never appear in any answer)
    from backups.models import Alert, Review
    from backups.services.notifications import notification_settings_update

    world.alert_b = Alert.objects.create(
        organization=world.org,
        kind="backup_failed",
        incident_key=f"backup_failed:{world.dataset_b.public_id}:{world.dedicated_location.public_id}",
        title="Backup failed: B",
        message="endpoint unreachable",
        client=world.client_b,
        dataset=world.dataset_b,
        location=world.dedicated_location,
    )
    world.review_b = Review.objects.create(
        organization=world.org,
        subject="client",
        client=world.client_b,
        reviewed_by=world.admin,
        next_review_at=timezone.now() + timezone.timedelta(days=182),
    )
    world.notification_settings = notification_settings_update(
        actor=Actor.system(world.org), webhook_url="https://hooks.example.test/T0/secret-path"
    )
    # restore drills: a finished drill of client B's snapshot
    world.drill_b = RestoreRun.objects.create(
        organization=world.org,
        dataset=world.dataset_b,
        snapshot=world.snapshot_b,
        destination_path="/tmp/agencyops-scratch/drill-b",  # noqa: S108  # a record, never used
        is_drill=True,
        status="succeeded",
        finished_at=timezone.now(),
    )
    # posture: an audit (with a finding) and a failed fix of client B's dedicated bucket
    from backups.models import PostureAudit, PostureFinding, PostureFix

    world.posture_audit_b = PostureAudit.objects.create(
        organization=world.org,
        location=world.dedicated_location,
        trigger="scheduled",
        facts={"versioning": "Disabled"},
    )
    PostureFinding.objects.create(
        organization=world.org,
        audit=world.posture_audit_b,
        location=world.dedicated_location,
        check_name="versioning",
        severity="critical",
        message="Versioning is off.",
        fix_action="enable_versioning",
    )
    world.posture_fix_b = PostureFix.objects.create(
        organization=world.org,
        location=world.dedicated_location,
        action="enable_versioning",
        requested_by=world.admin,
        error="endpoint unreachable",
    )
    # procurement evidence: a procurement token of client B
    from lifecycle.services import evidence_token_issue

    world.evidence_token_b, _ = evidence_token_issue(
        actor=Actor.system(world.org),
        client=world.client_b,
        name="Client B procurement",
        expires_at=timezone.now() + timezone.timedelta(days=30),
    )
    return world
