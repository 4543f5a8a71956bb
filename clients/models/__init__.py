"""Tenancy and inventory: who the agency is, whose data it holds, where, and who may touch it.

Split by sub-domain (organizations, clients and engagements, storage, datasets, access); every
model, enum, queryset and constant is re-exported here, and migrations name callables by this path.
"""

from clients.models.access import (
    GRANT_LEVELS,
    AccessGrant,
    ApiToken,
    ApiTokenQuerySet,
    GrantPermission,
    GrantQuerySet,
    GrantRequest,
    GrantRequestQuerySet,
    GrantRequestStatus,
    grant_max_days,
)
from clients.models.clients import (
    DEFAULT_DELETION_DUE_DAYS,
    REVIEW_PERIOD,
    Client,
    ClientOrDatasetScopedQuerySet,
    ClientQuerySet,
    ClientScopedQuerySet,
    ClientStatus,
    Engagement,
    EngagementStatus,
    default_next_review,
)
from clients.models.datasets import (
    DEFAULT_RPO,
    DEFAULT_RTO,
    MAX_RPO,
    MAX_RTO,
    MIN_DURATION,
    Classification,
    Dataset,
    DatasetKind,
    DatasetQuerySet,
    LifecycleState,
)
from clients.models.organizations import (
    Membership,
    Organization,
    Role,
)
from clients.models.storage import (
    ClientNamespace,
    LocationKind,
    LocationQuerySet,
    NamespaceQuerySet,
    Provider,
    StorageLocation,
)

__all__ = [
    "DEFAULT_DELETION_DUE_DAYS",
    "DEFAULT_RPO",
    "DEFAULT_RTO",
    "GRANT_LEVELS",
    "MAX_RPO",
    "MAX_RTO",
    "MIN_DURATION",
    "REVIEW_PERIOD",
    "AccessGrant",
    "ApiToken",
    "ApiTokenQuerySet",
    "Classification",
    "Client",
    "ClientNamespace",
    "ClientOrDatasetScopedQuerySet",
    "ClientQuerySet",
    "ClientScopedQuerySet",
    "ClientStatus",
    "Dataset",
    "DatasetKind",
    "DatasetQuerySet",
    "Engagement",
    "EngagementStatus",
    "GrantPermission",
    "GrantQuerySet",
    "GrantRequest",
    "GrantRequestQuerySet",
    "GrantRequestStatus",
    "LifecycleState",
    "LocationKind",
    "LocationQuerySet",
    "Membership",
    "NamespaceQuerySet",
    "Organization",
    "Provider",
    "Role",
    "StorageLocation",
    "default_next_review",
    "grant_max_days",
]
