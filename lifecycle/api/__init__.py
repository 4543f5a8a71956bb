"""Lifecycle API, split by sub-domain: the access log, obligations and legal holds (with the
engagement's "end"), deletion requests and their certificates, the signing key, and
procurement evidence. Views the router registers are re-exported here."""

from lifecycle.api.access_log import AccessEventViewSet
from lifecycle.api.deletion import DeletionRequestViewSet
from lifecycle.api.evidence import EvidenceSchemaViewSet, EvidenceTokenViewSet, EvidenceViewSet
from lifecycle.api.obligations import EngagementViewSet, LegalHoldViewSet, ObligationViewSet
from lifecycle.api.signing import SigningKeyViewSet

__all__ = [
    "AccessEventViewSet",
    "DeletionRequestViewSet",
    "EngagementViewSet",
    "EvidenceSchemaViewSet",
    "EvidenceTokenViewSet",
    "EvidenceViewSet",
    "LegalHoldViewSet",
    "ObligationViewSet",
    "SigningKeyViewSet",
]
