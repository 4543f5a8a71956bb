"""Assurance pages: the alert centre, the cost overview, and a dataset's copy map."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from backups.models import Alert, AlertKind, AlertState
from backups.pages.copy_map import copy_map_facts, copy_map_svg
from backups.selectors.assurance import alert_list_filtered
from backups.services.alerts import alert_may_acknowledge
from backups.services.cost import CostLine, CostReport, cents, cost_estimate, cost_series
from clients.selectors import client_get, client_list, dataset_get
from kernel.charts import bar_chart
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import Actor, parse_public_id

ALERT_PAGE_SIZE = 200


def _about(alert: Alert, actor: Actor) -> dict[str, Any] | None:
    """The object the alert is about, and the page that shows it."""
    if alert.dataset is not None:
        return {
            "name": alert.dataset.name,
            "url": reverse("dataset-detail", args=[alert.dataset.public_id]),
        }
    if alert.location is not None:
        return {
            "name": alert.location.name,
            "url": reverse("location-posture", args=[alert.location.public_id]),
        }
    if alert.client is not None:
        return {
            "name": alert.client.name,
            "url": reverse("client-detail", args=[alert.client.public_id]),
        }
    if alert.policy is not None:
        if actor.is_admin:
            return {
                "name": alert.policy.name,
                "url": reverse("policy-edit", args=[alert.policy.public_id]),
            }
        return {"name": alert.policy.name, "url": reverse("policy-list")}
    return None


@tenant_page
def alert_list(request: TenantHttpRequest) -> HttpResponse:
    """Open, acknowledged and resolved alerts the actor sees, filtered by state, kind and
    client; an open alert has an Acknowledge form with a note."""
    actor = request.actor
    state = request.GET.get("state", AlertState.OPEN)
    state = state if state in AlertState.values or state == "all" else AlertState.OPEN
    kind = request.GET.get("kind", "")
    kind = kind if kind in AlertKind.values else ""
    client_public_id = parse_public_id(request.GET.get("client", ""))
    alerts = alert_list_filtered(
        actor=actor,
        state=None if state == "all" else state,
        kind=kind or None,
        client_public_id=client_public_id,
    )
    rows = [
        {
            "alert": a,
            "about": _about(a, actor),
            "can_ack": alert_may_acknowledge(actor=actor, alert=a),
        }
        for a in alerts[:ALERT_PAGE_SIZE]
    ]
    context = {
        "rows": rows,
        "state": state,
        "kind": kind,
        "client_id": str(client_public_id) if client_public_id else "",
        "states": [*AlertState.choices, ("all", "All")],
        "kinds": AlertKind.choices,
        "clients": client_list(actor=actor),
        "here": request.get_full_path(),
        "truncated": len(rows) == ALERT_PAGE_SIZE,
        "page_size": ALERT_PAGE_SIZE,
    }
    return render(request, "backups/assurance/alert_list.html", context)


def _cost_rows(report: CostReport, lines: list[CostLine]) -> list[dict[str, Any]]:
    return [
        {"name": report.names.get(line.key, line.key), "bytes": line.bytes, "usd": cents(line.usd)}
        for line in lines
    ]


def _chart(chart_id: str, title: str, rows: list[dict[str, Any]], currency: str) -> Any:
    return bar_chart(
        chart_id=chart_id,
        title=title,
        description=f"{title}, in {currency} per month.",
        labels=[row["name"] for row in rows],
        values=[int(row["usd"] * 100) for row in rows],
        value_labels=[f"{row['usd']} {currency}" for row in rows],
        color="#2b59c3",
    )


@tenant_page
def cost_overview(request: TenantHttpRequest) -> HttpResponse:
    """This month's storage cost by client and by target, and the last twelve months (the
    cost services the API's /cost/ reads; the datasets the actor sees)."""
    actor = request.actor
    client_id = parse_public_id(request.GET.get("client", ""))
    client = client_get(actor=actor, public_id=client_id) if client_id else None
    now = timezone.now()
    report = cost_estimate(actor=actor, client=client, now=now)
    series = cost_series(actor=actor, months=12, client=client, now=now)
    by_client = _cost_rows(report, report.by_client)
    by_target = _cost_rows(report, report.by_target)
    months = [
        {
            "name": f"{m.month:%b %Y}",
            "month": m.month,
            "usd": cents(m.total),
            "bytes": sum(m.bytes_by_tier.values()),
        }
        for m in series
    ]
    context = {
        "report": report,
        "total": cents(report.total),
        "client": client,
        "clients": client_list(actor=actor),
        "by_client": by_client,
        "by_target": by_target,
        "months": months,
        "retrieval": cents(report.retrieval.usd),
        "series_chart": _chart("cost-series", "Storage cost per month", months, report.currency),
        "client_chart": _chart(
            "cost-clients", "Cost per client this month", by_client, report.currency
        ),
        "target_chart": _chart(
            "cost-targets", "Cost per target this month", by_target, report.currency
        ),
    }
    return render(request, "backups/assurance/cost_overview.html", context)


@tenant_page
def dataset_copy_map(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    """Where every copy of the dataset is, drawn (SVG, no script) and tabulated."""
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    facts = copy_map_facts(actor=actor, dataset=dataset)
    context = {"dataset": dataset, "facts": facts, "svg": copy_map_svg(facts)}
    return render(request, "backups/assurance/copy_map.html", context)
