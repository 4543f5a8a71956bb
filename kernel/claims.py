"""One rule for work a worker carries (backup runs, restores, deletions): claimed once, kept
alive by a heartbeat, recovered when its worker dies.

A row waits in one state (a run `pending`, a deletion `approved`) and is held in another
(`running`, `executing`). A worker claims it with a conditional update, which wins once however
many deliveries of the task race, on SQLite too. While it works it writes `heartbeat_at`; a held
row whose heartbeat is older than STALE_AFTER, or absent (handed back), belongs to no live worker
and may be claimed again. The recovery beat lists those rows, and the waiting rows whose message
was lost, to enqueue them again. The models name the fields `heartbeat_at` and `attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

# A claim whose heartbeat is older than this belongs to a dead worker and may be taken over.
STALE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class ClaimRule:
    """How one kind of row records its work: the field holding its state, the state it waits
    in and the one a worker holds it in, and when a waiting row counts as lost (its message
    never arrived): `waiting_since` older than `lost_after`."""

    state_field: str
    waiting: str
    held: str
    waiting_since: str
    lost_after: timedelta

    def stale(self, now: datetime) -> Q:
        """Held by no live worker: no heartbeat, or none for STALE_AFTER."""
        return Q(**{self.state_field: self.held}) & (
            Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER)
        )

    def claimable(self, now: datetime) -> Q:
        return Q(**{self.state_field: self.waiting}) | self.stale(now)

    def stuck(self, now: datetime) -> Q:
        """What the recovery beat enqueues again: stale rows and lost waiting ones."""
        lost = Q(
            **{self.state_field: self.waiting, f"{self.waiting_since}__lt": now - self.lost_after}
        )
        return lost | self.stale(now)


def claim(rows: QuerySet[Any], rule: ClaimRule, *, now: datetime, **fields: Any) -> bool:
    """Take the row `rows` names if it waits or its worker died: held, heartbeat now, one more
    attempt, and `fields`. Of two racing workers one updates; the other's condition is false."""
    won = rows.filter(rule.claimable(now)).update(
        **{rule.state_field: rule.held},
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        **fields,
    )
    return won > 0


def heartbeat(rows: QuerySet[Any], **fields: Any) -> None:
    """The holder is alive (and writes its progress, `fields`, with the beat)."""
    rows.update(heartbeat_at=timezone.now(), **fields)


def release(rows: QuerySet[Any], rule: ClaimRule, *, state: str, **fields: Any) -> None:
    """Hand the row back in `state` without a heartbeat, so that the next claim (a retry, a
    redelivery, the recovery beat) may take it at once."""
    rows.update(**{rule.state_field: state}, heartbeat_at=None, **fields)


def stuck(rows: QuerySet[Any], rule: ClaimRule, *, now: datetime) -> QuerySet[Any]:
    """The rows of `rows` to enqueue again: see ClaimRule.stuck."""
    return rows.filter(rule.stuck(now))
