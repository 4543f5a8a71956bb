"""The health dashboard: one read composing every app's status for what an actor may see
(overview), the client health rule it applies (health), and its charts (charts)."""

from lifecycle.dashboard.charts import storage_chart, success_chart
from lifecycle.dashboard.health import AMBER, GREEN, HEALTH_RULE, RED, ClientHealth
from lifecycle.dashboard.overview import DashboardOverview, dashboard_overview

__all__ = [
    "AMBER",
    "GREEN",
    "HEALTH_RULE",
    "RED",
    "ClientHealth",
    "DashboardOverview",
    "dashboard_overview",
    "storage_chart",
    "success_chart",
]
