"""The restore tests the agency guide names, as drills. Each is a drill like the scheduled
ones: restored into scratch, verified, timed against the RTO, recorded, alerting on failure.

- a single file from a specific date: the snapshot at or before the date, that file alone;
- a whole client project as of a week ago: one drill per dataset of the client, each from its
  snapshot at or before then;
- a database at a point in time: the database's snapshot at or before the time, restored into
  a scratch database and its row counts compared;
- a repository after a deletion: the worker's mirror deleted first, then the newest snapshot
  restored into a bare repository, fsck'd and its refs compared.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from backups.models import DrillScenario, RestoreRun, Snapshot
from backups.services.drills.run import DRILLABLE_STATES, drill_start
from backups.services.restores import snapshot_as_of
from clients.models import DATABASE_KINDS, Client, Dataset, LocationKind
from clients.services import relative_path_clean
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor

PROJECT_LOOKBACK = timedelta(days=7)


def _as_of(dataset: Dataset, as_of: datetime | None) -> Snapshot:
    if as_of is None:
        raise ValidationFailed(
            "This drill restores the data as it was at a time.",
            fields={"as_of": "Give the date and time."},
        )
    snapshot = snapshot_as_of(dataset, as_of)
    if snapshot is None:
        raise Conflict(
            f"{dataset.name} has no complete snapshot taken at or before "
            f"{as_of:%Y-%m-%d %H:%M} UTC."
        )
    return snapshot


def drill_scenario_start(
    *,
    actor: Actor | None,
    scenario: str,
    dataset: Dataset,
    as_of: datetime | None = None,
    path: str = "",
    enqueue: bool = True,
    origin: RequestOrigin = NO_ORIGIN,
) -> RestoreRun:
    """Start one of the guide's restore tests on a dataset (owners and admins, or the system).
    400 when the scenario does not fit the dataset (a database scenario on files, …)."""
    kind = dataset.location.kind
    snapshot: Snapshot | None = None
    prefix = ""
    if scenario == DrillScenario.FILE_AT_DATE:
        prefix = relative_path_clean(path, field="path")
        snapshot = _as_of(dataset, as_of)
    elif scenario == DrillScenario.DATABASE_POINT_IN_TIME:
        if kind not in DATABASE_KINDS:
            raise ValidationFailed(
                "This dataset is not a database.", fields={"scenario": "Not a database."}
            )
        snapshot = _as_of(dataset, as_of)
    elif scenario == DrillScenario.REPOSITORY_AFTER_DELETION:
        if kind != LocationKind.GIT:
            raise ValidationFailed(
                "This dataset is not a git repository.", fields={"scenario": "Not a repository."}
            )
        snapshot = (
            Snapshot.objects.filter(dataset=dataset, forgotten_at__isnull=True)
            .select_related("location")
            .first()
        )
        if snapshot is None:
            raise Conflict("The repository has no complete snapshot to restore yet.")
    elif scenario != DrillScenario.RANDOM:
        raise ValidationFailed(
            "Unknown scenario.", fields={"scenario": "Pick one of the drill scenarios."}
        )
    return drill_start(
        actor=actor,
        dataset=dataset,
        snapshot=snapshot,
        enqueue=enqueue,
        origin=origin,
        scenario=scenario,
        path_prefix=prefix,
    )


@transaction.atomic
def drill_project_start(
    *,
    actor: Actor,
    client: Client,
    as_of: datetime | None = None,
    enqueue: bool = True,
    origin: RequestOrigin = NO_ORIGIN,
) -> list[RestoreRun]:
    """The whole client project as it was a week ago (or at `as_of`): one drill per dataset
    that still exists and had a snapshot then. 409 when none had one."""
    if actor.organization_id != client.organization_id:
        raise NotFound()
    actor.require_admin("start restore drills")
    at = as_of or timezone.now() - PROJECT_LOOKBACK
    drills = []
    for dataset in Dataset.objects.filter(client=client, lifecycle_state__in=DRILLABLE_STATES):
        snapshot = snapshot_as_of(dataset, at)
        if snapshot is None:
            continue
        drills.append(
            drill_start(
                actor=actor,
                dataset=dataset,
                snapshot=snapshot,
                enqueue=enqueue,
                origin=origin,
                scenario=DrillScenario.PROJECT_AS_OF,
            )
        )
    if not drills:
        raise Conflict(
            f"No dataset of {client.name} had a complete snapshot at {at:%Y-%m-%d %H:%M} UTC."
        )
    return drills
