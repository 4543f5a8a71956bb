"""Template filters shared by every page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()

_ROLE_LABELS = {
    "owner": "Owner",
    "admin": "Admin",
    "lead": "Project lead",
    "member": "Member",
    "auditor": "Auditor",
}


@register.filter
def human_duration(value: timedelta | None) -> str:
    """`timedelta(hours=36)` → "1 d 12 h"; minutes only when they matter."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or "0 min"


@register.filter
def role_label(role: str) -> str:
    return _ROLE_LABELS.get(role, role)


# --- one date format everywhere, in the viewer's zone, with the zone named ---

_DATE_FORMAT = "%-d %b %Y"  # 6 Dec 2026
_TIME_FORMAT = "%H:%M"


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # the signed documents carry ISO 8601 strings
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return timezone.localtime(value)  # the zone the request activated (the user's own)


@register.filter
def when(value: datetime | str | None) -> str:
    """`2026-12-06T21:52:13.123456+00:00` → "6 Dec 2026, 21:52 UTC" in the viewer's zone."""
    local = _aware(value)
    if local is None:
        return "—"
    return f"{local.strftime(_DATE_FORMAT)}, {local.strftime(_TIME_FORMAT)} {local.tzname()}"


@register.filter
def day(value: datetime | date | str | None) -> str:
    """A calendar date in the same format as `when`: "6 Dec 2026"."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return "—"
    if isinstance(value, datetime):
        local = _aware(value)
        value = local.date() if local else None
    return value.strftime(_DATE_FORMAT) if value else "—"


@register.filter
def seconds(value: int | float | str | None) -> str:
    """A duration given in seconds, in words: 7862400 → "91 d"; 95 → "1 min 35 s"."""
    if value is None or value == "":
        return "—"
    total = float(value)
    if total < 60:
        return f"{total:.0f} s" if total >= 1 or total == 0 else f"{total:.2f} s"
    if total < 3600:
        minutes, rest = divmod(int(total), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return human_duration(timedelta(seconds=total))


@register.filter
def label(value: object) -> str:
    """An enum code in words: "raw_client_data" → "Raw client data" (Django choices show
    their own label through get_FOO_display; this is for codes in signed documents)."""
    if value is None or value == "":
        return "—"
    text = str(value).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]
