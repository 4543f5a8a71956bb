"""Restore drills: carrying one out (`run`), the guide's restore tests as drills (`scenarios`),
the daily dispatch (`dispatch`) and the review of a finished one (`review`); their status is
read in `backups.selectors.drills`. Public names here."""

from backups.selectors.drills import (
    DrillRecord,
    DrillStatus,
    DrillSummary,
    drill_status,
    drill_status_many,
    drill_summary_many,
)
from backups.services.drills.dispatch import drills_dispatch
from backups.services.drills.review import REVIEW_NOTE_MAX, drill_review
from backups.services.drills.run import drill_execute, drill_start
from backups.services.drills.scenarios import drill_project_start, drill_scenario_start

__all__ = [
    "REVIEW_NOTE_MAX",
    "DrillRecord",
    "DrillStatus",
    "DrillSummary",
    "drill_execute",
    "drill_project_start",
    "drill_review",
    "drill_scenario_start",
    "drill_start",
    "drill_status",
    "drill_status_many",
    "drill_summary_many",
    "drills_dispatch",
]
