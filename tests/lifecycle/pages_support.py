"""What the lifecycle page tests share: an agency (tests.backups.conftest) with a second admin
and a lead, a dataset on its local primary, and signed-in page clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client as PageClient

from clients import services as clients_services
from clients.models import Dataset
from tests.backups.conftest import Agency, sample_files
from tests.factories import UserFactory


@dataclass
class Desk:
    agency: Agency
    admin2: Any
    lead: Any
    member: Any
    dataset: Dataset

    def page(self, user: Any) -> PageClient:
        client = PageClient()
        client.force_login(user)
        return client


@pytest.fixture
def desk(agency: Agency) -> Desk:
    admin2 = UserFactory(username="agency-admin2")
    clients_services.membership_add(actor=agency.actor, user=admin2, role="admin")
    lead = UserFactory(username="agency-lead")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    clients_services.grant_create(
        actor=agency.actor, grantee=lead, client=agency.client, permission="manage", reason="lead"
    )
    member = UserFactory(username="agency-member")
    clients_services.membership_add(actor=agency.actor, user=member, role="member")
    dataset = agency.dataset("Training data", files=sample_files())
    return Desk(agency=agency, admin2=admin2, lead=lead, member=member, dataset=dataset)
