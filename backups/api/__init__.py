"""Backup API, split by sub-domain: core (policies, the dataset's backup fields and actions,
runs, snapshots, restores) and the assurance modules beside it. Views the router registers are
re-exported here."""

from backups.api.core import (
    BackupRunViewSet,
    DatasetViewSet,
    PolicyViewSet,
    RestoreRunViewSet,
    SnapshotViewSet,
)

__all__ = [
    "BackupRunViewSet",
    "DatasetViewSet",
    "PolicyViewSet",
    "RestoreRunViewSet",
    "SnapshotViewSet",
]
