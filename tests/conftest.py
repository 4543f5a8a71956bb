"""Shared fixtures: two organizations and one actor per role.

`world` holds organization A with client A (granted to `lead`) and client B (granted to nobody),
and organization B with its own admin and client. Every access test reads from it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from clients import services
from clients.models import Client, Dataset, Engagement, Organization, StorageLocation
from kernel.tenancy import Actor, system_scope
from lifecycle.models import PendingAccessEvent
from tests.factories import (
    ClientFactory,
    DatasetFactory,
    EngagementFactory,
    LocationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)


@pytest.fixture(autouse=True, scope="session")
def _operator_scope() -> Iterator[None]:
    """The tests act as the operator (fixtures, factories, assertions read every organization).
    Requests they make still run scoped: each opens its own closed scope in the middleware, and
    live servers and worker processes start with none."""
    with system_scope():
        yield


def broker_url_for_worker(url: str, worker: str | None) -> str:
    """The Redis database this xdist worker (`gw<N>`) uses: the configured number plus N, so
    parallel test processes never take each other's tasks (and CLIENT LIST by database finds
    only this process's workers). Serial runs and other brokers keep the URL as given."""
    if not worker or not url.startswith(("redis://", "rediss://")):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker.removeprefix('gw'))}"))


def pytest_configure(config: pytest.Config) -> None:
    # Settings were read before any conftest, so the per-worker URL is set on them here; the
    # environment carries it to Celery in this process (it prefers CELERY_BROKER_URL from the
    # environment) and to every worker process a test starts.
    if os.environ.get("CELERY_BROKER_URL"):
        url = broker_url_for_worker(
            str(django_settings.CELERY_BROKER_URL), os.environ.get("PYTEST_XDIST_WORKER")
        )
        os.environ["CELERY_BROKER_URL"] = url
        django_settings.CELERY_BROKER_URL = url


@dataclass
class World:
    org: Organization
    other_org: Organization
    owner: Any
    admin: Any
    admin2: Any
    lead: Any
    ungranted_lead: Any
    member: Any
    auditor: Any
    other_admin: Any
    client: Client  # granted to `lead` (manage)
    client_b: Client  # granted to nobody
    engagement: Engagement
    location: StorageLocation
    dedicated_location: StorageLocation  # dedicated to client_b
    dataset: Dataset  # of client
    dataset_b: Dataset  # of client_b
    other_client: Client
    other_dataset: Dataset

    def actor(self, user: Any) -> Actor:
        from kernel.tenancy import actor_for_user

        actor = actor_for_user(user)
        assert actor is not None
        return actor


class _ServerErrors(logging.Handler):
    """Collects what Django logs for a response of 500 or more (django.request)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if int(getattr(record, "status_code", 500)) >= 500:
            self.records.append(record)


@pytest.fixture(autouse=True)
def _no_server_error_anywhere() -> Iterator[None]:
    """No test may see a 5xx answer, whatever it asserts itself: hostile input gets a 4xx."""
    handler = _ServerErrors()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    assert not handler.records, [record.getMessage() for record in handler.records]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's deliberate slowness costs seconds per fixture; the hash strength is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _access_log_inline(settings: Any) -> None:
    # Access events are appended in this process when a test commits for real, never published
    # to the developer's broker (tests of the worker path switch this off, see tests/lifecycle).
    settings.AGENCYOPS_ACCESS_LOG_INLINE = True


EGRESS_ALLOW = "127.0.0.1"


@pytest.fixture
def local_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test's local root (AGENCYOPS_LOCAL_ROOTS): organizations keep their local locations
    in `<local_root>/<organization slug>/`. One per test, so no test sees another's files."""
    return tmp_path_factory.mktemp("local-root").resolve()


@pytest.fixture(autouse=True)
def _containment(settings: Any, local_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the operator of the test installation grants: one local root, and loopback (where
    the suite's own S3 server, webhook receivers and databases listen) in the egress policy.
    The environment carries the same to the processes a test starts (workers, manage.py)."""
    settings.AGENCYOPS_LOCAL_ROOTS = (local_root,)
    settings.AGENCYOPS_EGRESS_ALLOW = [EGRESS_ALLOW]
    monkeypatch.setenv("AGENCYOPS_LOCAL_ROOTS", str(local_root))
    monkeypatch.setenv("AGENCYOPS_EGRESS_ALLOW", EGRESS_ALLOW)


def organization_dir(root: Path, organization: Organization) -> Path:
    """The organization's folder in a local root, created."""
    path = root / organization.slug
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def org_root(world: World, local_root: Path) -> Path:
    """Organization A's folder of the test's local root: where its local locations may live."""
    return organization_dir(local_root, world.org)


@pytest.fixture(autouse=True)
def _scratch_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Drills restore into the scratch folder and their clean-up removes what no drill of this
    # database owns: one folder per test, never var/scratch that parallel test processes share.
    settings.AGENCYOPS_SCRATCH_DIR = tmp_path_factory.mktemp("scratch")


@pytest.fixture(autouse=True)
def _test_master_key(settings: Any) -> Any:
    """A throwaway master key per test, never the developer's var/master.key."""
    import base64
    import secrets

    from kernel.crypto import reset_master_key_cache

    settings.AGENCYOPS_MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
    reset_master_key_cache()
    yield
    reset_master_key_cache()


def _member(org: Organization, role: str, username: str) -> Any:
    user = UserFactory(username=username)
    MembershipFactory(organization=org, user=user, role=role)
    return user


@pytest.fixture
def world(db: Any) -> World:
    org = OrganizationFactory(name="Org A", slug="org-a")
    other_org = OrganizationFactory(name="Org B", slug="org-b")
    owner = _member(org, "owner", "owner")
    admin = _member(org, "admin", "admin")
    admin2 = _member(org, "admin", "admin2")
    lead = _member(org, "lead", "lead")
    ungranted = _member(org, "lead", "ungranted")
    member = _member(org, "member", "member")
    auditor = _member(org, "auditor", "auditor")
    other_admin = _member(other_org, "admin", "other_admin")
    client = ClientFactory(organization=org, name="Client A")
    client_b = ClientFactory(organization=org, name="Client B")
    engagement = EngagementFactory(client=client)
    location = LocationFactory(organization=org, name="Shared bucket")
    dedicated = LocationFactory(organization=org, name="Client B bucket", client=client_b)
    dataset = DatasetFactory(client=client, engagement=engagement, location=location)
    dataset_b = DatasetFactory(client=client_b, location=dedicated)
    other_client = ClientFactory(organization=other_org, name="Other client")
    other_dataset = DatasetFactory(client=other_client)
    system = Actor.system(org)
    # Client A's folder on the shared bucket, where its datasets (DatasetFactory: datasets/N)
    # and restores live.
    services.namespace_assign(actor=system, location=location, client=client, path="datasets")
    services.grant_create(
        actor=system, grantee=lead, client=client, permission="manage", reason="lead of A"
    )
    services.grant_create(
        actor=system, grantee=member, client=client, permission="restore", reason="member of A"
    )
    # The setup's own grant events never reach a chain: the test's transaction never commits,
    # so no drain is asked for them. Drop their pending rows too, so a test's drain appends
    # only what the test itself recorded.
    PendingAccessEvent.objects.all().delete()
    return World(
        org=org,
        other_org=other_org,
        owner=owner,
        admin=admin,
        admin2=admin2,
        lead=lead,
        ungranted_lead=ungranted,
        member=member,
        auditor=auditor,
        other_admin=other_admin,
        client=client,
        client_b=client_b,
        engagement=engagement,
        location=location,
        dedicated_location=dedicated,
        dataset=dataset,
        dataset_b=dataset_b,
        other_client=other_client,
        other_dataset=other_dataset,
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def as_user(api: APIClient) -> Any:
    """`as_user(user)` returns an API client authenticated as that user (None: anonymous)."""

    def login(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return login
