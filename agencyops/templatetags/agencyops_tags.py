"""Template filters shared by every page."""

from __future__ import annotations

from datetime import timedelta

from django import template

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
