"""The dashboard's two charts: backup runs per day, and backup storage by tier."""

from __future__ import annotations

from django.utils.safestring import SafeString

from kernel.charts import Series, bar_chart, stacked_bar_chart
from lifecycle.dashboard.overview import DashboardOverview

SUCCESS_COLOR = "#1f7a3a"
FAILURE_COLOR = "#b3261e"
STORAGE_COLOR = "#2450a6"


def _size(value: int) -> str:
    from django.template.defaultfilters import filesizeformat

    return str(filesizeformat(value)).replace("\xa0", " ")


def success_chart(overview: DashboardOverview) -> SafeString:
    days = overview.runs_by_day
    succeeded = sum(d.succeeded for d in days)
    failed = sum(d.failed for d in days)
    return stacked_bar_chart(
        chart_id="chart-backup-success",
        title=f"Backup runs per day, last {len(days)} days",
        description=(
            f"{succeeded} succeeded and {failed} failed between {days[0].day:%Y-%m-%d} and "
            f"{days[-1].day:%Y-%m-%d} (UTC), stacked per day."
        ),
        labels=[f"{d.day:%m-%d}" for d in days],
        series=[
            Series("Succeeded", [d.succeeded for d in days], SUCCESS_COLOR),
            Series("Failed", [d.failed for d in days], FAILURE_COLOR),
        ],
    )


def storage_chart(overview: DashboardOverview) -> SafeString:
    tiers = overview.storage_by_tier
    return bar_chart(
        chart_id="chart-storage-by-tier",
        title="Backup storage by tier",
        description="; ".join(f"{t.label}: {_size(t.bytes)}, ${t.usd:.2f} a month" for t in tiers)
        or "No backup is stored yet.",
        labels=[t.label for t in tiers],
        values=[t.bytes for t in tiers],
        value_labels=[f"{_size(t.bytes)} · ${t.usd:.2f}" for t in tiers],
        color=STORAGE_COLOR,
        empty_text="No backup is stored yet.",
    )
