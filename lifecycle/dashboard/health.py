"""Client health, the rule the dashboard states in one line:
- red: a live dataset missed its RPO, has an open "backup failed" alert, or fails the 3-2-1
  copies rule (fewer than three fresh copies);
- amber: 3-2-1 fails on media, offsite or history, a dataset has no successful restore drill
  within its period, or the client's review is due;
- green: none of these. Deleted datasets and those pending deletion are not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backups.models import RunStatus
from backups.services.assurance import ProtectionStatus, duration_words
from backups.services.drills import DrillStatus
from clients.models import Client, Dataset

GREEN, AMBER, RED = "green", "amber", "red"
HEALTH_LABELS = {GREEN: "Healthy", AMBER: "Needs attention", RED: "At risk"}
HEALTH_ORDER = {RED: 0, AMBER: 1, GREEN: 2}
HEALTH_RULE = (
    "Red: a dataset missed its RPO, its last backup to a target failed, or it has fewer than "
    "3 fresh copies. Amber: 3-2-1 fails on media, offsite or history, a restore drill is not "
    "within its period, or the client's review is due. Green: none of these."
)


@dataclass(frozen=True)
class ClientHealth:
    client: Client
    status: str  # GREEN, AMBER or RED
    reasons: tuple[str, ...]  # red ones first
    datasets: int
    open_alerts: int
    # The latest verified deletion of the client's data (with its certificate), for a client
    # whose datasets are all gone: the row says so instead of "no datasets yet".
    deletion: Any = None

    @property
    def label(self) -> str:
        if self.deleted:
            return "Deleted"
        return HEALTH_LABELS[self.status]

    @property
    def deleted(self) -> bool:
        return self.datasets == 0 and self.deletion is not None


def _dataset_reasons(
    dataset: Dataset,
    protection: ProtectionStatus | None,
    drill: DrillStatus | None,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """(red reasons, amber reasons) of one live dataset."""
    red: list[str] = []
    amber: list[str] = []
    name = dataset.name
    if protection is not None and not protection.retired:
        if not protection.rpo_met:
            if protection.last_good_at is None:
                red.append(f"{name}: no good backup yet (RPO {duration_words(dataset.rpo)})")
            else:
                age = duration_words(now - protection.last_good_at)
                red.append(
                    f"{name}: last good backup {age} ago, RPO is {duration_words(dataset.rpo)}"
                )
        for rule in protection.rules:
            if rule.met:
                continue
            (red if rule.name == "copies" else amber).append(f"{name}: {rule.reason}")
    if drill is not None and not drill.within_period:
        last = drill.last
        if last is None:
            amber.append(f"{name}: never restored in a drill")
        elif last.status == RunStatus.FAILED:
            amber.append(f"{name}: the last restore drill failed ({last.finished_at:%Y-%m-%d})")
        else:
            amber.append(f"{name}: no successful restore drill within its period")
    return red, amber


def client_health(
    client: Client,
    datasets: list[Dataset],
    protections: dict[int, ProtectionStatus],
    drills: dict[int, DrillStatus],
    failed_alerts: list[str],
    open_alerts: int,
    now: datetime,
) -> ClientHealth:
    red = list(failed_alerts)
    amber: list[str] = []
    for dataset in datasets:
        more_red, more_amber = _dataset_reasons(
            dataset, protections.get(dataset.pk), drills.get(dataset.pk), now
        )
        red.extend(more_red)
        amber.extend(more_amber)
    if client.next_review_at <= now:
        amber.append(f"review due since {client.next_review_at:%Y-%m-%d}")
    status = RED if red else AMBER if amber else GREEN
    return ClientHealth(
        client=client,
        status=status,
        reasons=tuple(dict.fromkeys(red + amber)),
        datasets=len(datasets),
        open_alerts=open_alerts,
    )
