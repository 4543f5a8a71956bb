"""What RPO a backup policy can meet: the longest wait between two of its scheduled copies.

A dataset whose RPO is shorter than that will miss it between runs even when every run
succeeds (an RPO of 12 h under a daily policy is missed every afternoon): the pages warn at
registration and on the dataset page.
"""

from __future__ import annotations

from datetime import timedelta

from backups.models import BackupPolicy, Frequency

# The longest gap between two scheduled copies, per frequency (a month: its longest, 31 days).
FREQUENCY_GAP: dict[str, timedelta] = {
    Frequency.CONTINUOUS: timedelta(minutes=15),
    Frequency.HOURLY: timedelta(hours=1),
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(days=7),
    Frequency.MONTHLY: timedelta(days=31),
}


def policy_rpo_floor(policy: BackupPolicy) -> timedelta:
    """The shortest RPO the policy's schedule can meet: its longest gap between two copies."""
    return FREQUENCY_GAP.get(policy.frequency, timedelta(days=31))


def rpo_policy_conflict(*, rpo: timedelta, policy: BackupPolicy | None) -> timedelta | None:
    """The RPO the policy can meet when it is longer than `rpo` (the dataset's objective will
    be missed between runs), else None. No policy: None (3-2-1 reports that case)."""
    if policy is None:
        return None
    floor = policy_rpo_floor(policy)
    return floor if rpo < floor else None
