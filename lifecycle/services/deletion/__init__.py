"""Deletion requests: plan every copy, four-eyes approval, resumable execution, verification.

Execution is idempotent and resumable: the request is claimed with a conditional update (one
worker at a time, a dead worker's claim goes stale after kernel.claims.STALE_AFTER), the plan's
prefixes are fixed when the request is drafted (and extended, when execution starts, by copies
made since), and each round re-lists what remains under them before deleting, so a redelivered
task deletes only what is still there and never anything outside. Split by step; public names
here: plan, decisions, execution, verify (and common).
"""

from lifecycle.services.deletion.common import (
    DeletionDeferred,
    DeletionFailed,
    deletion_datasets_of,
    request_datasets,
)
from lifecycle.services.deletion.decisions import (
    deletion_plan_preview,
    deletion_request_approve,
    deletion_request_create,
    deletion_request_reject,
    deletion_requests_draft_due,
)
from lifecycle.services.deletion.execution import (
    deletion_follow_ups_run,
    deletion_request_execute,
    deletions_recover,
)
from lifecycle.services.deletion.plan import deletion_plan_compute
from lifecycle.services.deletion.settings import (
    APPROVAL_CHOICES,
    deletion_settings_get,
    deletion_settings_update,
)

__all__ = [
    "APPROVAL_CHOICES",
    "DeletionDeferred",
    "DeletionFailed",
    "deletion_datasets_of",
    "deletion_follow_ups_run",
    "deletion_plan_compute",
    "deletion_plan_preview",
    "deletion_request_approve",
    "deletion_request_create",
    "deletion_request_execute",
    "deletion_request_reject",
    "deletion_requests_draft_due",
    "deletion_settings_get",
    "deletion_settings_update",
    "deletions_recover",
    "request_datasets",
]
