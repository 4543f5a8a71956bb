"""factory_boy factories. Sub-factories share the parent's organization."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from backups.services import protection_create
from clients.models import (
    AccessGrant,
    Client,
    Dataset,
    Engagement,
    Membership,
    Organization,
    StorageLocation,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.django.Password("correct horse battery staple")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Agency {n}")
    slug = factory.Sequence(lambda n: f"agency-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = "lead"


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")
    contract_reference = factory.Sequence(lambda n: f"MSA-{n:04d}")


class EngagementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Engagement

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    name = factory.Sequence(lambda n: f"Engagement {n}")
    starts_on = factory.LazyFunction(lambda: date(2026, 1, 1))


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StorageLocation

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Location {n}")
    kind = "s3"
    provider = "aws"
    region = "eu-west-1"
    bucket = factory.Sequence(lambda n: f"bucket-{n}")
    prefix = "data"


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    location = factory.SubFactory(
        LocationFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"Dataset {n}")
    kind = "raw_client_data"
    classification = "confidential"
    path = factory.Sequence(lambda n: f"datasets/{n}")
    rpo = timedelta(hours=24)
    rto = timedelta(hours=8)

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Dataset:
        dataset: Dataset = super()._create(model_class, *args, **kwargs)
        # As registration does (backups' dataset_registered receiver): every dataset has its
        # protection from the start, and nothing later makes one.
        protection_create(dataset)
        return dataset


class GrantFactory(factory.django.DjangoModelFactory):
    """Rows only: tests that need guardian permissions use services.grant_create."""

    class Meta:
        model = AccessGrant

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    grantee = factory.SubFactory(UserFactory)
    permission = "view"
    reason = "test"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


# --- rows of the backups and lifecycle apps, for the access matrices ---
# Written directly, like the apps' own fixtures: these build what a test reads, not how the
# services would make it. Each takes its organization (and client) from its dataset.


class BackupRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "backups.BackupRun"

    dataset = factory.SubFactory(DatasetFactory)
    organization = factory.SelfAttribute("dataset.organization")
    trigger = "manual"
    status = "failed"
    error = factory.LazyAttribute(lambda o: f"{o.dataset.name}: endpoint unreachable")
    finished_at = factory.LazyFunction(timezone.now)


class SnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "backups.Snapshot"

    run = factory.SubFactory(BackupRunFactory, status="succeeded", error="")
    dataset = factory.SelfAttribute("run.dataset")
    organization = factory.SelfAttribute("dataset.organization")
    location = factory.SelfAttribute("dataset.location")
    manifest_id = factory.Sequence(lambda n: f"20260101T000000Z-{n}")
    taken_at = factory.LazyFunction(timezone.now)


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "backups.Alert"

    dataset = factory.SubFactory(DatasetFactory)
    client = factory.SelfAttribute("dataset.client")
    organization = factory.SelfAttribute("client.organization")
    kind = "backup_failed"
    incident_key = factory.Sequence(lambda n: f"backup_failed:{n}")
    title = factory.LazyAttribute(lambda o: f"Backup failed: {o.dataset.name}")
    message = "endpoint unreachable"


class LegalHoldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "lifecycle.LegalHold"

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    dataset = None
    reason = factory.Sequence(lambda n: f"litigation {n}")


class ObligationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "lifecycle.RetentionObligation"

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    dataset = None
    kind = "retain_until"
    retain_until = factory.LazyFunction(lambda: timezone.now().date() + timedelta(days=30))
    source = "contract"
    source_reference = factory.Sequence(lambda n: f"clause {n}")


class DeletionRequestFactory(factory.django.DjangoModelFactory):
    """A verified request, ready for `deletion_certificate_issue`; `state="drafted"` for one
    awaiting approval."""

    class Meta:
        model = "lifecycle.DeletionRequest"

    client = factory.SubFactory(ClientFactory)
    organization = factory.SelfAttribute("client.organization")
    dataset = None
    scope = factory.LazyAttribute(lambda o: "client" if o.dataset is None else "dataset")
    reason = factory.Sequence(lambda n: f"contract ended {n}")
    state = "verified"
    plan = factory.LazyFunction(lambda: {"datasets": [], "locations": [], "keys": []})
    verification = factory.LazyFunction(
        lambda: {"ok": True, "locations": [], "database_keys_destroyed": True}
    )
    verified_at = factory.LazyFunction(timezone.now)
