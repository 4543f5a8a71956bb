"""Inventory API, split by sub-domain like the models: clients (and engagements), storage
(locations, client folders), datasets, access (grants and their requests), members (and
tokens). The views the router registers, and the bases and serializers the higher apps extend,
are re-exported here."""

from clients.api.access import (
    GrantRequestSerializer,
    GrantRequestViewSet,
    GrantSerializer,
    GrantViewSet,
)
from clients.api.clients import (
    ClientSerializer,
    ClientViewSet,
    EngagementSerializer,
    EngagementViewSet,
)
from clients.api.common import MemberUserField, _WriteThroughServices
from clients.api.datasets import DatasetSerializer, DatasetViewSet
from clients.api.members import (
    MembershipSerializer,
    MembershipViewSet,
    TokenSerializer,
    TokenViewSet,
)
from clients.api.storage import (
    LocationSerializer,
    LocationViewSet,
    NamespaceSerializer,
    NamespaceViewSet,
)

__all__ = [
    "ClientSerializer",
    "ClientViewSet",
    "DatasetSerializer",
    "DatasetViewSet",
    "EngagementSerializer",
    "EngagementViewSet",
    "GrantRequestSerializer",
    "GrantRequestViewSet",
    "GrantSerializer",
    "GrantViewSet",
    "LocationSerializer",
    "LocationViewSet",
    "MemberUserField",
    "MembershipSerializer",
    "MembershipViewSet",
    "NamespaceSerializer",
    "NamespaceViewSet",
    "TokenSerializer",
    "TokenViewSet",
    "_WriteThroughServices",
]
