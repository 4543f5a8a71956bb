"""Procurement evidence: the organization's signing key (certificates and evidence), the
read-only tokens a client's procurement team holds, and the Art. 30(2) processing record."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from clients.models import Client, ClientScopedQuerySet, Organization
from kernel.tenancy import TenantQuerySet


class SigningKey(models.Model):
    """The organization's Ed25519 key for certificates and evidence; the private half is
    sealed under the master key."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="signing_key"
    )
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, base64.")
    private_sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"signing key of {self.organization_id}"


class ProcurementTokenQuerySet(ClientScopedQuerySet):
    def live(self, now: Any) -> Any:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ProcurementToken(models.Model):
    """A read-only token for a client's procurement team: it reads that client's evidence and
    deletion certificates, nothing else. Only its SHA-256 is stored; it always expires."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100, help_text="Who holds it, e.g. 'ACME procurement'.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ProcurementTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="procurement_token_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"procurement token {self.name} for {self.client_id}"

    @property
    def label(self) -> str:
        """How the access log names it."""
        return f"procurement-token:{self.public_id}"


class ProcessingRecord(models.Model):
    """The record of processing the agency keeps as a processor for one client (GDPR Art.
    30(2)): who the processor and the controller are, what is processed on the controller's
    behalf, transfers to third countries with their safeguards, and the security measures.
    The processor's and controller's names are the organization's and the client's."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.OneToOneField(
        Client, on_delete=models.PROTECT, related_name="processing_record"
    )
    processor_contact = models.TextField(blank=True, help_text="Address, e-mail, phone.")
    processor_representative = models.CharField(
        max_length=300, blank=True, help_text="Art. 27 representative, where applicable."
    )
    processor_dpo = models.CharField(
        "processor's data protection officer", max_length=300, blank=True
    )
    controller_contact = models.TextField(
        blank=True, help_text="Empty: the client's contact name and e-mail."
    )
    controller_representative = models.CharField(max_length=300, blank=True)
    controller_dpo = models.CharField(
        "controller's data protection officer", max_length=300, blank=True
    )
    # ["storage and backup of training data", "annotation", …]
    processing_categories = models.JSONField(default=list, blank=True)
    # [{"country": "US", "recipient": "…", "safeguard": "standard_contractual_clauses",
    #   "documentation": "SCC module 3, signed 2026-01-10"}]
    transfers = models.JSONField(default=list, blank=True)
    security_measures = models.TextField(
        blank=True,
        help_text="General description of the technical and organisational measures "
        "(Art. 32(1)); the evidence adds what the system itself enforces.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ClientScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"processing record of {self.client_id}"
