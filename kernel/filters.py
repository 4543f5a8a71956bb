"""Query-string filters shared by the API's lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class _UtcDateTimeField(IsoDateTimeField):  # type: ignore[misc]  # django-filter is untyped
    """An ISO 8601 date-time, as UTC. Any offset ISO allows is accepted (-23:59 … +23:59), but
    PostgreSQL refuses offsets past ±15:59 in a query, and a date near year 1 or 9999 may not
    convert: the first is converted here, the second is a field error, never a 500."""

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Give a date-time between years 1 and 9999.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    """`IsoDateTimeFilter`, compared in UTC."""

    field_class = _UtcDateTimeField
