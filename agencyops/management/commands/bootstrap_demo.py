"""Idempotent demo data for `make run`: an agency, an owner, a lead, clients, datasets, and
the built-in backup policies pointed at a second local disk."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from backups import services as backup_services
from backups.models import BackupPolicy
from clients import services
from clients.models import (
    AccessGrant,
    Client,
    ClientNamespace,
    Dataset,
    Engagement,
    Membership,
    Organization,
    StorageLocation,
)
from kernel.tenancy import Actor

DEMO_FILES = {
    "acme/raw/patients-2026-10.csv": "id,age,region\n1,34,north\n2,51,south\n",
    "acme/raw/notes/readme.txt": "Raw export from the client's EHR, October 2026.\n",
    "acme/labels/train.jsonl": '{"text": "chest pain", "label": "cardio"}\n',
    "acme/models/triage-v3/weights.bin": "\x00" * 64,
    "northwind/repo/main.py": "print('forecast')\n",
    "northwind/contracts/msa-2026.txt": "Master services agreement (demo).\n",
}


# client, engagement, name, kind, classification, contains personal data, path on the primary
_DatasetSpec = tuple[Client, Engagement | None, str, str, str, bool, str]


def _demo_datasets(
    acme: Client, northwind: Client, triage: Engagement, forecast: Engagement
) -> list[_DatasetSpec]:
    return [
        (acme, triage, "EHR export October", "raw_client_data", "restricted", True, "acme/raw"),
        (
            acme,
            triage,
            "Triage labels",
            "labeled_training_set",
            "confidential",
            True,
            "acme/labels",
        ),
        (
            acme,
            triage,
            "Triage model v3",
            "model_artifact",
            "confidential",
            False,
            "acme/models/triage-v3",
        ),
        (
            northwind,
            forecast,
            "Forecast repo",
            "code_repository",
            "internal",
            False,
            "northwind/repo",
        ),
        (
            northwind,
            None,
            "Contracts",
            "business_records",
            "confidential",
            False,
            "northwind/contracts",
        ),
    ]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization and print the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        # The demo organization's folder of the first local root: where the operator lets it
        # keep local storage (AGENCYOPS_LOCAL_ROOTS; embedded default var/storage).
        demo_root = Path(settings.AGENCYOPS_LOCAL_ROOTS[0]) / "demo"
        for relative, content in DEMO_FILES.items():
            target = demo_root / "primary" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_text(content)
        (demo_root / "backups").mkdir(parents=True, exist_ok=True)
        with transaction.atomic():
            passwords = self._users_and_organization()
            self._inventory(demo_root)
        self.stdout.write("Demo organization ready: http://127.0.0.1:8000/")
        self.stdout.write("  (operator: Django admin at /admin/; the others are the agency's)")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<8} password: {password}")

    def _passwords(self) -> dict[str, str]:
        path = Path(settings.VAR_DIR) / "demo-logins.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_passwords(self, passwords: dict[str, str]) -> None:
        path = Path(settings.VAR_DIR) / "demo-logins.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(passwords, handle)

    def _users_and_organization(self) -> dict[str, str]:
        user_model = get_user_model()
        known = self._passwords()
        passwords: dict[str, str] = {}
        users = {}
        for username in ("owner", "lead", "operator"):
            user = user_model.objects.filter(username=username).first()
            if user is None:
                user, password = services.user_create(
                    username=username, email=f"{username}@demo.agencyops.test"
                )
            elif known.get(username) and user.check_password(known[username]):
                password = known[username]
            else:
                password = token_urlsafe(12)
                user.set_password(password)
                user.save(update_fields=["password"])
            passwords[username] = password
            users[username] = user
        # Django admin is the operator's, not a tenant's: the organization's owner is no
        # superuser; a separate operator login (in no organization) is.
        users["owner"].is_staff = users["owner"].is_superuser = False
        users["owner"].save(update_fields=["is_staff", "is_superuser"])
        users["operator"].is_staff = users["operator"].is_superuser = True
        users["operator"].save(update_fields=["is_staff", "is_superuser"])
        self._save_passwords(passwords)
        organization = Organization.objects.filter(slug="demo").first()
        if organization is None:
            organization = services.organization_create(
                name="Demo Agency", slug="demo", owner=users["owner"]
            )
        if not Membership.objects.filter(user=users["lead"]).exists():
            services.membership_add(
                actor=Actor.system(organization), user=users["lead"], role="lead"
            )
        return passwords

    def _inventory(self, demo_root: Path) -> None:
        organization = Organization.objects.get(slug="demo")
        actor = Actor.system(organization)
        lead = get_user_model().objects.get(username="lead")
        primary = self._storage(actor, demo_root)
        acme, northwind, triage, forecast = self._clients_and_engagements(actor)
        # The primary disk is shared: each client keeps its datasets in its own folder there.
        for client, folder in ((acme, "acme"), (northwind, "northwind")):
            if not ClientNamespace.objects.filter(location=primary, client=client).exists():
                services.namespace_assign(actor=actor, location=primary, client=client, path=folder)
        for spec in _demo_datasets(acme, northwind, triage, forecast):
            self._dataset(actor, primary, lead, spec)
        live = AccessGrant.objects.active(timezone.now()).filter(grantee=lead, client=acme)
        if not live.exists():
            services.grant_create(
                actor=actor,
                grantee=lead,
                client=acme,
                permission="manage",
                reason="Demo: lead of the triage engagement",
            )

    def _storage(self, actor: Actor, demo_root: Path) -> StorageLocation:
        """The primary and backup disks; every built-in policy without a target backs up to
        the backup disk. Returns the primary."""
        primary = self._local_location(actor, "Primary disk", demo_root / "primary")
        backup_disk = self._local_location(actor, "Backup disk", demo_root / "backups")
        for policy in BackupPolicy.objects.filter(organization=actor.organization):
            if not policy.policy_targets.exists():
                backup_services.policy_update(actor=actor, policy=policy, targets=[backup_disk])
        return primary

    def _clients_and_engagements(
        self, actor: Actor
    ) -> tuple[Client, Client, Engagement, Engagement]:
        """Acme Health and Northwind Retail, and one engagement of each."""
        today = date.today()  # noqa: DTZ011  # demo dates only
        acme = self._client(
            actor,
            "Acme Health",
            contract_reference="MSA-2026-014",
            dpa_reference="DPA-2026-014",
            contact_name="Dana Reyes",
            contact_email="dana@acme-health.test",
        )
        northwind = self._client(
            actor,
            "Northwind Retail",
            contract_reference="SOW-88",
            contact_name="Sam Ito",
            contact_email="sam@northwind.test",
        )
        triage = self._engagement(actor, acme, "Triage model", today - timedelta(days=120))
        forecast = self._engagement(actor, northwind, "Demand forecast", today - timedelta(days=60))
        return acme, northwind, triage, forecast

    def _dataset(
        self, actor: Actor, primary: StorageLocation, lead: User, spec: _DatasetSpec
    ) -> None:
        """Register the dataset unless its client already has one by that name."""
        client, engagement, name, kind, classification, personal, path = spec
        if not Dataset.objects.filter(client=client, name=name).exists():
            services.dataset_register(
                actor=actor,
                client=client,
                engagement=engagement,
                name=name,
                kind=kind,
                classification=classification,
                contains_personal_data=personal,
                location=primary,
                path=path,
                owner=lead,
                source="Client upload (demo)",
            )

    def _local_location(self, actor: Actor, name: str, directory: Path) -> StorageLocation:
        """The demo's local location, in the organization's folder of the local root (an older
        demo's location, from before the roots, is moved there)."""
        directory.mkdir(parents=True, exist_ok=True)
        existing = StorageLocation.objects.filter(
            organization=actor.organization, name=name
        ).first()
        if existing is None:
            return services.location_create(
                actor=actor, name=name, kind="local", provider="filesystem", prefix=str(directory)
            )
        if existing.prefix != str(directory.resolve()):
            return services.location_update(actor=actor, location=existing, prefix=str(directory))
        return existing

    def _client(self, actor: Actor, name: str, **fields: Any) -> Client:
        existing = Client.objects.filter(organization=actor.organization, name=name).first()
        return existing or services.client_create(actor=actor, name=name, **fields)

    def _engagement(self, actor: Actor, client: Client, name: str, starts_on: date) -> Engagement:
        existing = Engagement.objects.filter(client=client, name=name).first()
        return existing or services.engagement_create(
            actor=actor, client=client, name=name, starts_on=starts_on
        )
