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
