from __future__ import annotations

import pytest

from tests.conftest import World


@pytest.fixture
def w(world: World) -> World:
    """The world plus objects of client_b, which nobody but admins may see."""
    from agencyops.tenancy import Actor
    from clients import services
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
    return world
