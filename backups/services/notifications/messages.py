"""What an alert notice says: the e-mail's subject and body, the webhook's JSON, and what to do
for each kind of alert."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.urls import reverse

from backups.models import Alert, AlertKind, DeliveryEvent

WHAT_TO_DO = {
    AlertKind.BACKUP_FAILED: (
        "Check that the target is reachable and its credentials are valid, then start a backup "
        "again from the dataset page. The next successful backup to this target resolves this "
        "alert."
    ),
    AlertKind.RPO_MISSED: (
        "No good snapshot is recent enough for the dataset's recovery point objective. Check "
        "the failed runs and the worker, then start a backup."
    ),
    AlertKind.DRILL_FAILED: (
        "A restore drill could not restore the dataset. Read the drill's issues and fix the "
        "target or the snapshot before you need a real restore."
    ),
    AlertKind.DRILL_SLOW: (
        "A restore drill took longer than the dataset's recovery time objective. Consider a "
        "faster tier or target, or agree a longer RTO with the client."
    ),
    AlertKind.DRILL_OVERDUE: "Run a restore drill for this dataset.",
    AlertKind.POSTURE_REGRESSION: (
        "A protection setting of the storage location weakened. Open the location's posture "
        "and apply the fix, or restore the setting at the provider."
    ),
    AlertKind.REVIEW_DUE: (
        "Confirm the protection still fits (datasets, policy, targets, RPO/RTO) and record the "
        "review; the alert resolves once the review is recorded."
    ),
    AlertKind.DELETION_AWAITING: (
        "Open the deletion request, read its plan (every copy it will delete, and the copies "
        "handed out), then approve or reject it; an owner or admin who did not request it must "
        "decide. The alert resolves with the decision."
    ),
}


def _link(alert: Alert) -> str:
    base = settings.AGENCYOPS_SITE_URL.rstrip("/")
    if alert.dataset is not None:
        return base + reverse("dataset-detail", args=[alert.dataset.public_id])
    if alert.client is not None:
        return base + reverse("client-detail", args=[alert.client.public_id])
    return base + reverse("dashboard")


# Characters no mail header may carry: C0 and C1 controls (CR, LF, TAB…), DEL and the Unicode
# line and paragraph separators. A client's name is whatever someone typed.
_UNSAFE_HEADER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_safe(text: str) -> str:
    """One line for a mail header: every unsafe character becomes a space (never a refused
    message: Django refuses a header with a newline, and the notice would be lost)."""
    return " ".join(_UNSAFE_HEADER.sub(" ", text).split())


def subject_of(alert: Alert, event: str) -> str:
    prefix = "[AgencyOps] Resolved: " if event == DeliveryEvent.RESOLVED else "[AgencyOps] "
    return header_safe(prefix + alert.title)[:250]


def body_of(alert: Alert, event: str) -> str:
    lines = []
    if event == DeliveryEvent.RESOLVED:
        lines += [
            f"Resolved: {alert.title}",
            "",
            alert.resolution or "The condition cleared.",
            "",
            f"Open since: {alert.opened_at:%Y-%m-%d %H:%M} UTC",
            f"Resolved at: {alert.resolved_at:%Y-%m-%d %H:%M} UTC"
            if alert.resolved_at
            else "Resolved.",
            f"Occurrences: {alert.occurrences}",
        ]
    else:
        lines += [
            alert.title,
            "",
            f"What happened: {alert.message}",
            f"Since: {alert.opened_at:%Y-%m-%d %H:%M} UTC",
            f"Severity: {alert.get_severity_display()}",
            "",
            "What to do: " + WHAT_TO_DO.get(AlertKind(alert.kind), "Look into it."),
        ]
    if alert.client is not None:
        lines.append(f"Client: {alert.client.name}")
    if alert.dataset is not None:
        lines.append(f"Dataset: {alert.dataset.name}")
    lines += ["", f"Details: {_link(alert)}", "", "-- AgencyOps"]
    return "\n".join(lines)


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """The webhook body: a chat-friendly "text" (Slack, Mattermost, Teams, Rocket.Chat all show
    it) and the alert's fields for machines."""
    state_word = "RESOLVED" if event == DeliveryEvent.RESOLVED else alert.severity.upper()
    detail = alert.resolution if event == DeliveryEvent.RESOLVED else alert.message
    return {
        "text": f"[AgencyOps] {state_word}: {alert.title}\n{detail}\n{_link(alert)}",
        "alert": {
            "id": str(alert.public_id),
            "kind": alert.kind,
            "state": alert.state,
            "severity": alert.severity,
            "title": alert.title,
            "message": alert.message,
            "client": (
                {"id": str(alert.client.public_id), "name": alert.client.name}
                if alert.client
                else None
            ),
            "dataset": (
                {"id": str(alert.dataset.public_id), "name": alert.dataset.name}
                if alert.dataset
                else None
            ),
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }
