"""The lifecycle app's data, split by sub-domain: the access log (access), obligations and
legal holds (obligations), deletion requests and certificates (deletion), and procurement
evidence (evidence). Public names re-exported here."""

from lifecycle.models.access import (
    AccessAction,
    AccessChainCheckpoint,
    AccessChainHead,
    AccessDrainRequest,
    AccessEvent,
    AccessEventQuerySet,
    ActorKind,
    AppendOnly,
    PendingAccessEvent,
    StorageLogObject,
    StorageLogSource,
)
from lifecycle.models.deletion import (
    CertificateQuerySet,
    DeletionApproval,
    DeletionCertificate,
    DeletionDecision,
    DeletionItem,
    DeletionRequest,
    DeletionScope,
    DeletionSettings,
    DeletionState,
    ItemRole,
)
from lifecycle.models.evidence import (
    ProcessingRecord,
    ProcurementToken,
    ProcurementTokenQuerySet,
    SigningKey,
)
from lifecycle.models.obligations import (
    RETAIN_KINDS,
    LegalHold,
    LegalHoldQuerySet,
    ObligationKind,
    ObligationSource,
    RetentionObligation,
)

__all__ = [
    "RETAIN_KINDS",
    "AccessAction",
    "AccessChainCheckpoint",
    "AccessChainHead",
    "AccessDrainRequest",
    "AccessEvent",
    "AccessEventQuerySet",
    "ActorKind",
    "AppendOnly",
    "CertificateQuerySet",
    "DeletionApproval",
    "DeletionCertificate",
    "DeletionDecision",
    "DeletionItem",
    "DeletionRequest",
    "DeletionScope",
    "DeletionSettings",
    "DeletionState",
    "ItemRole",
    "LegalHold",
    "LegalHoldQuerySet",
    "ObligationKind",
    "ObligationSource",
    "PendingAccessEvent",
    "ProcessingRecord",
    "ProcurementToken",
    "ProcurementTokenQuerySet",
    "RetentionObligation",
    "SigningKey",
    "StorageLogObject",
    "StorageLogSource",
]
