"""3-2-1, computed from what is really stored, never declared.

For each dataset, at a moment `now`:
- copies: the primary, plus each target of the dataset's current policy whose latest complete
  (non-forgotten) snapshot is at most the dataset's RPO old. At least 3.
- media: distinct storage families among those counted copies (the provider of an S3 bucket,
  "filesystem" for a local directory; the primary counts). At least 2.
- offsite: one counted target copy with another provider than the primary's, or the same
  provider in another (non-empty) region. Two local directories are never offsite.
- history: the primary keeps versions (its latest posture audit read versioning "Enabled"), or
  the targets hold at least two restorable snapshots.
- rpo_met: the newest snapshot on any target is at most the RPO old.

A dataset that is deleted or pending deletion is reported with its real figures but never counted
as failing: its copies are meant to disappear (`retired`, reason "not protected: dataset
deleted"). Only the current policy's targets matter: a snapshot left on a former target is not a
copy the policy keeps fresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from backups.models import DatasetProtection, PolicyTarget, PostureAudit, Snapshot
from clients.models import Dataset, LifecycleState, LocationKind, Provider, StorageLocation

MIN_COPIES = 3
MIN_MEDIA = 2
MIN_HISTORY_SNAPSHOTS = 2
RETIRED_STATES = {
    LifecycleState.DELETED: "not protected: dataset deleted",
    LifecycleState.DELETION_PENDING: "not protected: dataset deletion pending",
}


class ProtectedDataset(Protocol):
    """What 3-2-1 reads of a dataset: a model instance, or a row read as values."""

    @property
    def pk(self) -> int: ...
    @property
    def location_id(self) -> int: ...
    @property
    def rpo(self) -> timedelta: ...
    @property
    def lifecycle_state(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    """One of the four 3-2-1 rules; `reason` says why it holds or, in words, why it fails."""

    name: str
    met: bool
    reason: str


@dataclass(frozen=True)
class TargetStatus:
    location_id: int
    location_public_id: UUID
    location_name: str
    last_snapshot_at: datetime | None
    fresh: bool
    restorable_snapshots: int


@dataclass(frozen=True)
class ProtectionStatus:
    dataset_id: int
    copies: int
    media: int
    offsite: bool
    history: bool
    rules: tuple[Rule, ...]
    met: bool
    reasons: tuple[str, ...]
    last_good_at: datetime | None
    rpo_met: bool
    targets: tuple[TargetStatus, ...]
    # Deleted or pending deletion: reported, never failed (met and rpo_met are True).
    retired: bool = False


def duration_words(value: timedelta) -> str:
    """A span as a person says it: "45 min", "24 h", "1 h 30 min", "3 days", "3 days 5 h"."""
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return "under 1 min"
    hours, minutes = divmod(minutes, 60)
    if hours < 1:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def storage_family(location: StorageLocation) -> str:
    """What fails together: one provider's buckets, or local disks."""
    return Provider.FILESYSTEM.value if location.kind == LocationKind.LOCAL else location.provider


def is_offsite(primary: StorageLocation, copy: StorageLocation) -> bool:
    """Another provider, or the same provider in another region; two local directories never."""
    if storage_family(copy) != storage_family(primary):
        return True
    if copy.kind == LocationKind.LOCAL:
        return False
    return bool(copy.region and primary.region and copy.region != primary.region)


# Built once: `Provider.values` builds a new list on every access, which 3-2-1 of a thousand
# datasets paid four thousand times.
_FAMILY_LABELS = {value: str(label) for value, label in Provider.choices}


def _family_label(family: str) -> str:
    return _FAMILY_LABELS.get(family, family)


def _where(location: StorageLocation) -> str:
    label = _family_label(storage_family(location))
    return f"{label} in {location.region}" if location.region else label


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass
class _Batch:
    """Everything the rules read, loaded for many datasets in a fixed number of queries."""

    policy_names: dict[int, str]  # dataset pk -> its policy's name (absent: no policy)
    targets: dict[int, list[int]]  # dataset pk -> its policy's target location pks, in order
    locations: dict[int, StorageLocation]  # with `latest_versioning` annotated
    snapshots: dict[tuple[int, int], tuple[datetime, int]]  # (dataset, location) -> last, count
    # Datasets alike in primary, RPO, policy and the state of each target share their copies,
    # media and offsite rules: worded once per batch, not once per dataset.
    rules: dict[tuple[Any, ...], tuple[int, int, bool, Rule, Rule, Rule]] = field(
        default_factory=dict
    )


def _load(
    datasets: Sequence[ProtectedDataset], now: datetime, scope: QuerySet[Dataset] | None
) -> _Batch:
    # The rows of these datasets: through the caller's query when there is one (a thousand
    # pks in an IN list cost milliseconds to build and bind, in every query that filters).
    of_datasets: Q = (
        Q(dataset_id__in=scope.values("pk"))
        if scope is not None
        else Q(dataset_id__in=[d.pk for d in datasets])
    )
    # 1. each dataset's policy
    protections = DatasetProtection.objects.filter(of_datasets, policy__isnull=False).values_list(
        "dataset_id", "policy_id", "policy__name"
    )
    policy_of: dict[int, int] = {}
    policy_names: dict[int, str] = {}
    for dataset_id, policy_id, policy_name in protections:
        policy_of[dataset_id] = policy_id
        policy_names[dataset_id] = policy_name
    # 2. the policies' targets, in order
    by_policy: dict[int, list[int]] = defaultdict(list)
    rows = PolicyTarget.objects.filter(policy_id__in=set(policy_of.values())).order_by(
        "policy_id", "position", "id"
    )
    for policy_id, location_id in rows.values_list("policy_id", "location_id"):
        by_policy[policy_id].append(location_id)
    targets = {d: by_policy.get(p, []) for d, p in policy_of.items()}
    # 3. primaries and targets, with what the latest posture audit (up to `now`) read of
    # versioning
    location_ids = {d.location_id for d in datasets}.union(*by_policy.values())
    latest_versioning = (
        PostureAudit.objects.filter(location_id=OuterRef("pk"), audited_at__lte=now)
        .order_by("-audited_at", "-id")
        .annotate(versioning=KeyTextTransform("versioning", "facts"))
        .values("versioning")[:1]
    )
    locations = {
        location.pk: location
        for location in StorageLocation.objects.filter(pk__in=location_ids).annotate(
            latest_versioning=Subquery(latest_versioning)
        )
    }
    # 4. per (dataset, target): the newest restorable snapshot at `now`, and how many there are
    snapshots = _snapshot_facts(
        Snapshot.objects.filter(
            Q(forgotten_at__isnull=True) | Q(forgotten_at__gt=now), of_datasets, taken_at__lte=now
        ),
        sorted(set().union(*by_policy.values())),
    )
    return _Batch(policy_names, targets, locations, snapshots)


# Up to this many target locations, the snapshots are counted per dataset with a column pair
# per target (no sort of every snapshot by dataset and location); above, per (dataset,
# location) group, whose cost does not grow with the number of targets.
PIVOT_MAX_TARGETS = 6


def _snapshot_facts(
    snapshots: QuerySet[Snapshot], target_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[datetime, int]]:
    """(dataset pk, target location pk) -> (newest, how many) of `snapshots`, for the targets
    holding any; snapshots elsewhere are not counted (no rule reads them)."""
    if not target_ids:
        return {}
    if len(target_ids) > PIVOT_MAX_TARGETS:
        grouped = (
            snapshots.values("dataset_id", "location_id")
            .annotate(last=Max("taken_at"), count=Count("*"))
            .order_by()
            .values_list("dataset_id", "location_id", "last", "count")
        )
        return {
            (dataset_id, location_id): (last, count)
            for dataset_id, location_id, last, count in grouped
        }
    columns: dict[str, Any] = {}
    for location_id in target_ids:
        on_target = Q(location_id=location_id)
        columns[f"last_{location_id}"] = Max("taken_at", filter=on_target)
        columns[f"count_{location_id}"] = Count("id", filter=on_target)
    facts: dict[tuple[int, int], tuple[datetime, int]] = {}
    rows = (
        snapshots.values("dataset_id")
        .annotate(**columns)
        .order_by()
        .values_list("dataset_id", *columns)
    )
    for dataset_id, *values in rows:
        for location_id, last, count in zip(target_ids, values[::2], values[1::2], strict=True):
            if count:
                facts[dataset_id, location_id] = (last, count)
    return facts


# A target's state in `_target_rules` when it holds no restorable snapshot.
_NO_SNAPSHOT = ""


def _target_rules(
    batch: _Batch,
    primary: StorageLocation,
    rpo: timedelta,
    policy_name: str | None,
    states: tuple[tuple[int, str | None], ...],
) -> tuple[int, int, bool, Rule, Rule, Rule]:
    """Copies, media and offsite of a dataset whose targets are in `states` — (location pk,
    None when it holds a fresh snapshot, else why it does not count) — as (copies, media,
    offsite, and the three rules). Remembered in the batch."""
    key = (primary.pk, rpo, policy_name, states)
    known = batch.rules.get(key)
    if known is not None:
        return known
    rpo_words = duration_words(rpo)
    counted: list[StorageLocation] = []
    stale: list[str] = []
    other: list[str] = []
    for location_id, state in states:
        location = batch.locations[location_id]
        if location_id == primary.pk:
            # A backup beside the original dies with it: not an independent copy.
            other.append(f"target {location.name} is the primary's own location")
        elif state is None:
            counted.append(location)
        elif state == _NO_SNAPSHOT:
            other.append(f"target {location.name} has no snapshot yet")
        else:
            stale.append(f"target {location.name}'s last snapshot is {state} old")

    copies = 1 + len(counted)
    # copies
    if copies >= MIN_COPIES:
        copies_reason = (
            f"{copies} copies: the primary and {_plural(len(counted), 'target', 'targets')} "
            f"with a snapshot at most {rpo_words} old"
        )
    else:
        why: list[str] = []
        if stale:
            why.append(", ".join(stale) + f", RPO is {rpo_words}")
        why.extend(other)
        if policy_name is None:
            why.append("the dataset has no backup policy")
        elif len(states) < MIN_COPIES - 1:
            why.append(
                f"policy {policy_name} has {_plural(len(states), 'target', 'targets')}, "
                f"{MIN_COPIES} copies need {MIN_COPIES - 1}"
            )
        copies_reason = f"only {_plural(copies, 'copy', 'copies')}: " + "; ".join(why)
    # media
    families = sorted({storage_family(primary), *(storage_family(c) for c in counted)})
    media = len(families)
    labels = ", ".join(_family_label(f) for f in families)
    if media >= MIN_MEDIA:
        media_reason = f"{media} media: {labels}"
    else:
        media_reason = f"only 1 medium: every counted copy is on {labels}"
    # offsite
    offsite_copy = next((c for c in counted if is_offsite(primary, c)), None)
    if offsite_copy is not None:
        offsite_reason = f"offsite copy on target {offsite_copy.name} ({_where(offsite_copy)})"
    elif not counted:
        offsite_reason = f"no offsite copy: no target holds a snapshot at most {rpo_words} old"
    else:
        offsite_reason = (
            f"no offsite copy: every counted copy is on {_where(primary)}, like the primary"
        )
    rules = (
        copies,
        media,
        offsite_copy is not None,
        Rule("copies", copies >= MIN_COPIES, copies_reason),
        Rule("media", media >= MIN_MEDIA, media_reason),
        Rule("offsite", offsite_copy is not None, offsite_reason),
    )
    batch.rules[key] = rules
    return rules


def _evaluate(dataset: ProtectedDataset, batch: _Batch, now: datetime) -> ProtectionStatus:
    rpo: timedelta = dataset.rpo
    primary = batch.locations[dataset.location_id]
    target_statuses: list[TargetStatus] = []
    states: list[tuple[int, str | None]] = []
    restorable = 0
    last_good_at: datetime | None = None
    for location_id in batch.targets.get(dataset.pk, ()):
        location = batch.locations[location_id]
        last, count = batch.snapshots.get((dataset.pk, location_id), (None, 0))
        fresh = last is not None and now - last <= rpo
        target_statuses.append(
            TargetStatus(
                location_id=location_id,
                location_public_id=location.public_id,
                location_name=location.name,
                last_snapshot_at=last,
                fresh=fresh,
                restorable_snapshots=count,
            )
        )
        restorable += count
        if last is not None and (last_good_at is None or last > last_good_at):
            last_good_at = last
        if fresh or location_id == primary.pk:
            states.append((location_id, None))
        elif last is None:
            states.append((location_id, _NO_SNAPSHOT))
        else:
            states.append((location_id, duration_words(now - last)))
    copies, media, offsite, copies_rule, media_rule, offsite_rule = _target_rules(
        batch, primary, rpo, batch.policy_names.get(dataset.pk), tuple(states)
    )
    # history
    versioning: str | None = getattr(primary, "latest_versioning", None)
    if primary.kind == LocationKind.S3 and versioning == "Enabled":
        history, history_reason = True, "versioning is enabled on the primary"
    elif restorable >= MIN_HISTORY_SNAPSHOTS:
        history, history_reason = True, f"{restorable} restorable snapshots on the targets"
    else:
        if primary.kind == LocationKind.LOCAL:
            primary_words = "the primary is a local directory without versions"
        elif versioning is None:
            primary_words = "the primary's versioning has not been audited"
        else:
            primary_words = f"the primary's versioning is {versioning}"
        snapshots_words = _plural(restorable, "restorable snapshot", "restorable snapshots")
        history, history_reason = False, f"no version history: {primary_words}, {snapshots_words}"
    rules = (copies_rule, media_rule, offsite_rule, Rule("history", history, history_reason))
    rpo_met = last_good_at is not None and now - last_good_at <= rpo
    retired_reason = RETIRED_STATES.get(LifecycleState(dataset.lifecycle_state))
    reasons: tuple[str, ...]
    if retired_reason is not None:
        met, reasons, rpo_met = True, (retired_reason,), True
    else:
        met = all(rule.met for rule in rules)
        reasons = tuple(rule.reason for rule in rules if not rule.met)
    return ProtectionStatus(
        dataset_id=dataset.pk,
        copies=copies,
        media=media,
        offsite=offsite,
        history=history,
        rules=rules,
        met=met,
        reasons=reasons,
        last_good_at=last_good_at,
        rpo_met=rpo_met,
        targets=tuple(target_statuses),
        retired=retired_reason is not None,
    )


def protection_status_many(
    datasets: Sequence[ProtectedDataset],
    *,
    now: datetime | None = None,
    scope: QuerySet[Dataset] | None = None,
) -> dict[int, ProtectionStatus]:
    """3-2-1 of many datasets, keyed by dataset pk, in four queries whatever their number
    (three when no policy of theirs has a target: no snapshot to count).

    Callers pass datasets they may see (a selector's rows, or rows read as values); nothing
    here widens the scope: every row read is a dataset's own protection, snapshot or location.
    `scope`, when the caller has one, is a query selecting exactly these datasets: their rows
    are then read through it rather than through a list of their pks."""
    if not datasets:
        return {}
    now = now or timezone.now()
    batch = _load(datasets, now, scope)
    return {dataset.pk: _evaluate(dataset, batch, now) for dataset in datasets}


def protection_status(dataset: Dataset, *, now: datetime | None = None) -> ProtectionStatus:
    """3-2-1 of one dataset (see the module docstring for the rules)."""
    return protection_status_many([dataset], now=now)[dataset.pk]
