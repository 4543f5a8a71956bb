"""Backup API, split by sub-domain: core (policies, the dataset's backup fields and actions,
runs, snapshots, restores) and the assurance modules beside it. Views the router registers are
re-exported here."""

from backups.api.alerts import AlertViewSet, NotificationSettingsViewSet, ReviewViewSet
from backups.api.assurance import CostViewSet, ProtectionViewSet, StoragePriceViewSet
from backups.api.core import (
    BackupRunViewSet,
    DatasetViewSet,
    PolicyViewSet,
    RestoreRunViewSet,
    SnapshotViewSet,
)
from backups.api.drills import DrillViewSet
from backups.api.posture import PostureAuditViewSet, PostureFixViewSet

__all__ = [
    "AlertViewSet",
    "BackupRunViewSet",
    "CostViewSet",
    "DatasetViewSet",
    "DrillViewSet",
    "NotificationSettingsViewSet",
    "PolicyViewSet",
    "PostureAuditViewSet",
    "PostureFixViewSet",
    "ProtectionViewSet",
    "RestoreRunViewSet",
    "ReviewViewSet",
    "SnapshotViewSet",
    "StoragePriceViewSet",
]
