"""The copy map of a dataset: where every copy is (the primary, each target of its policy, the
copies the product itself made), as facts for a table and as a server-rendered SVG diagram.

Every text put into the SVG is escaped here (names come from users); the SVG names itself
(`role="img"`, `<title>`, `aria-label`) and the page repeats every fact in a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from backups import selectors
from backups.models import DataCopy, StorageClass
from backups.selectors.assurance import data_copy_list
from backups.services.assurance import protection_status, storage_family
from backups.services.schedules import policy_targets_for
from clients.models import Dataset, LocationKind, Provider, StorageLocation
from kernel.tenancy import Actor

SVG_NS = "http://www.w3.org/2000/svg"
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Place:
    """One copy of the dataset on a location: the primary or a backup target."""

    role: str  # "Primary copy" or "Target 1", "Target 2", …
    location: StorageLocation
    provider: str
    region: str
    medium: str
    tier: str
    lock: str
    last_good_at: datetime | None = None
    age: timedelta | None = None
    fresh: bool | None = None  # None: the primary (it is the data, not a backup)
    snapshots: int = 0


@dataclass(frozen=True)
class TrackedCopy:
    copy: DataCopy
    kind: str
    where: str
    source: str  # the target whose snapshot it came from


@dataclass
class CopyMap:
    dataset: Dataset
    places: list[Place] = field(default_factory=list)
    copies: list[TrackedCopy] = field(default_factory=list)
    policy_name: str = ""


def _lock_words(mode: str, days: int | None, facts: dict[str, object] | None) -> str:
    if mode:
        return f"Object Lock {mode.title()}, {days} d"
    lock = (facts or {}).get("object_lock")
    if isinstance(lock, dict) and lock.get("enabled"):
        default = f" {str(lock.get('mode') or '').title()}".rstrip()
        return f"Object Lock on the bucket{default}"
    versioning = (facts or {}).get("versioning")
    if versioning == "Enabled":
        return "Versioning on, no Object Lock"
    return "No Object Lock"


def _provider(location: StorageLocation) -> str:
    return str(dict(Provider.choices).get(storage_family(location), location.provider))


def copy_map_facts(*, actor: Actor, dataset: Dataset, now: datetime | None = None) -> CopyMap:
    """Gathered through the selectors with the page's actor, and the 3-2-1 evaluation."""
    now = now or timezone.now()
    protection = selectors.protection_of(dataset)
    policy = protection.policy if protection is not None else None
    status = protection_status(dataset, now=now)
    by_location = {t.location_id: t for t in status.targets}
    targets = list(policy_targets_for(policy, dataset)) if policy is not None else []
    audits = selectors.latest_audits([dataset.location_id, *(t.location_id for t in targets)])
    result = CopyMap(dataset=dataset, policy_name=policy.name if policy else "")
    primary = dataset.location
    primary_audit = audits.get(primary.pk)
    result.places.append(
        Place(
            role="Primary copy",
            location=primary,
            provider=_provider(primary),
            region=primary.region or "—",
            medium=primary.get_kind_display(),
            tier="—",
            lock=_lock_words("", None, primary_audit.facts if primary_audit else None),
        )
    )
    tier = StorageClass(policy.storage_class).label if policy else "—"
    for number, target in enumerate(targets, start=1):
        location = target.location
        state = by_location.get(location.pk)
        audit = audits.get(location.pk)
        last = state.last_snapshot_at if state else None
        result.places.append(
            Place(
                role=f"Target {number}",
                location=location,
                provider=_provider(location),
                region=location.region or "—",
                medium=location.get_kind_display(),
                tier=str(tier) if location.kind == LocationKind.S3 else "—",
                lock=_lock_words(
                    target.object_lock_mode,
                    target.object_lock_days,
                    audit.facts if audit else None,
                ),
                last_good_at=last,
                age=(now - last) if last else None,
                fresh=bool(state and state.fresh),
                snapshots=state.restorable_snapshots if state else 0,
            )
        )
    for made in data_copy_list(actor=actor).filter(dataset=dataset):
        where = made.location.name if made.location is not None else ""
        where = f"{where}: {made.path}" if where else made.path
        result.copies.append(
            TrackedCopy(
                copy=made,
                kind=made.get_kind_display(),
                where=where,
                source=made.snapshot.location.name,
            )
        )
    return result


# --- the diagram ---

BOX_W, BOX_H, GAP = 260, 104, 16
COLUMNS = (20, 330, 640)
WIDTH = COLUMNS[2] + BOX_W + 20


def _age_words(place: Place) -> str:
    if place.fresh is None:
        return "the data itself"
    if place.age is None:
        return "no copy yet"
    hours = int(place.age.total_seconds() // 3600)
    age = (
        f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h" if hours else "under 1 h"
    )
    return f"last good copy {age} ago" + ("" if place.fresh else " (older than the RPO)")


def _box(x: int, y: int, lines: list[str], *, stroke: str, fill: str) -> list[str]:
    parts = [
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="2"/>'
    ]
    for index, line in enumerate(lines):
        weight = ' font-weight="bold"' if index == 0 else ""
        text = line if len(line) <= 40 else line[:39] + "…"
        parts.append(
            f'<text x="{x + 10}" y="{y + 20 + index * 17}" font-size="12" {FONT}{weight} '
            f'fill="#1d2330">{escape(text)}</text>'
        )
    return parts


def _where(place: Place) -> str:
    return place.provider if place.region == "—" else f"{place.provider}, {place.region}"


def _row_y(index: int) -> int:
    return 50 + index * (BOX_H + GAP)


def copy_map_svg(facts: CopyMap) -> SafeString:
    primary, targets = facts.places[0], facts.places[1:]
    rows = max(1, len(targets), len(facts.copies))
    height = _row_y(rows) + 10
    title = f"Copy map of {facts.dataset.name}"
    label = (
        f"{title}: the primary on {primary.location.name} and "
        f"{len(targets)} backup target{'s' if len(targets) != 1 else ''}"
        + (", " + ", ".join(p.location.name for p in targets) if targets else "")
        + f"; {len(facts.copies)} tracked cop{'ies' if len(facts.copies) != 1 else 'y'}."
    )
    parts = [
        f'<svg xmlns="{SVG_NS}" class="copy-map" id="copy-map-svg" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(label)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#5b6475"/></marker></defs>',
    ]
    for x, heading in zip(
        COLUMNS, ("Primary", "Backup targets", "Copies the product made"), strict=True
    ):
        parts.append(
            f'<text x="{x}" y="30" font-size="14" font-weight="bold" {FONT} fill="#1d2330">'
            f"{escape(heading)}</text>"
        )
    py = _row_y(0)
    parts += _box(
        COLUMNS[0],
        py,
        [
            f"{primary.role}: {primary.location.name}",
            _where(primary),
            primary.medium,
            primary.lock,
            _age_words(primary),
        ],
        stroke="#2b59c3",
        fill="#eef3fc",
    )
    target_y: dict[str, int] = {}
    for index, place in enumerate(targets):
        y = _row_y(index)
        target_y[place.location.name] = y
        ok = bool(place.fresh)
        dash = "" if ok else 'stroke-dasharray="6 4" '
        parts.append(
            f'<line x1="{COLUMNS[0] + BOX_W}" y1="{py + BOX_H // 2}" x2="{COLUMNS[1] - 4}" '
            f'y2="{y + BOX_H // 2}" stroke="#5b6475" stroke-width="2" '
            f'{dash}marker-end="url(#arrow)"/>'
        )
        parts += _box(
            COLUMNS[1],
            y,
            [
                f"{place.role}: {place.location.name}",
                _where(place),
                place.medium if place.tier == "—" else f"{place.medium}, tier {place.tier}",
                place.lock,
                ("✓ " if ok else "✗ ") + _age_words(place),
            ],
            stroke="#1f7a45" if ok else "#b42318",
            fill="#eefaf2" if ok else "#fdf0ef",
        )
    if not targets:
        parts.append(
            f'<text x="{COLUMNS[1]}" y="{_row_y(0) + 20}" font-size="12" {FONT} fill="#b42318">'
            "No backup target: the only copy is the primary.</text>"
        )
    for index, tracked in enumerate(facts.copies):
        y = _row_y(index)
        source_y = target_y.get(tracked.source)
        if source_y is not None:
            parts.append(
                f'<line x1="{COLUMNS[1] + BOX_W}" y1="{source_y + BOX_H // 2}" '
                f'x2="{COLUMNS[2] - 4}" y2="{y + BOX_H // 2}" stroke="#8a93a6" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
        made = timezone.localtime(tracked.copy.made_at)
        parts += _box(
            COLUMNS[2],
            y,
            [
                tracked.kind,
                tracked.where,
                f"from {tracked.source}",
                f"made {made:%-d %b %Y, %H:%M} {made.tzname()}",
                "removed" if tracked.copy.removed_at else "still present",
            ],
            stroke="#8a93a6",
            fill="#f6f7f9",
        )
    if not facts.copies:
        parts.append(
            f'<text x="{COLUMNS[2]}" y="{_row_y(0) + 20}" font-size="12" {FONT} fill="#5b6475">'
            "None: no restore or download yet.</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every interpolated text is escaped above
