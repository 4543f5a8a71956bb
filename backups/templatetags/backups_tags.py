"""Backup panels any page may include: the 3-2-1 rules of a dataset or of a client's datasets,
and the RPO a dataset's policy cannot meet. A template tag, so pages of apps below `backups`
(the client page) show them without importing it; every read goes through a selector with the
request's actor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

from backups import selectors
from backups.services.assurance import Rule, protection_status, protection_status_many
from backups.services.rpo import policy_rpo_floor, rpo_policy_conflict
from clients.models import Client, Dataset
from clients.selectors import dataset_list
from kernel.tenancy import Actor

register = template.Library()

RULE_LABELS = {
    "copies": "3 copies",
    "media": "2 media",
    "offsite": "1 offsite",
    "history": "Version history",
}


def _rules(rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": rule.name,
            "label": RULE_LABELS.get(rule.name, rule.name),
            "met": rule.met,
            "reason": rule.reason,
        }
        for rule in rules
    ]


def rpo_warning(dataset: Dataset) -> dict[str, Any] | None:
    """What the page says when the dataset's RPO is shorter than its policy can meet."""
    protection = selectors.protection_of(dataset)
    policy = protection.policy if protection is not None else None
    floor = rpo_policy_conflict(rpo=dataset.rpo, policy=policy)
    if floor is None or policy is None:
        return None
    return {"rpo": dataset.rpo, "policy": policy, "floor": floor}


@register.inclusion_tag("backups/tags/protection_panel.html")
def protection_panel(dataset: Dataset) -> dict[str, Any]:
    """The dataset's 3-2-1 rules, each ✓/✗ with its reason, and the RPO-vs-policy warning.
    The caller passes a dataset it read through a selector (the page's own)."""
    status = protection_status(dataset)
    return {
        "dataset": dataset,
        "status": status,
        "rules": _rules(status.rules),
        "rpo_warning": rpo_warning(dataset),
    }


@register.inclusion_tag("backups/tags/client_protection_panel.html")
def client_protection_panel(client: Client, actor: Actor) -> dict[str, Any]:
    """3-2-1 of each of the client's datasets the actor sees (a lead with a grant on one
    dataset sees that one): five queries whatever their number."""
    datasets = list(dataset_list(actor=actor).filter(client=client))
    statuses = protection_status_many(datasets)
    rows = [
        {"dataset": d, "status": statuses[d.pk], "rules": _rules(statuses[d.pk].rules)}
        for d in datasets
    ]
    return {"client": client, "rows": rows, "rule_labels": list(RULE_LABELS.values())}


@register.simple_tag
def policy_rpo(policy: Any) -> timedelta:
    """`{% policy_rpo policy as rpo %}`: the shortest RPO the policy's schedule can meet."""
    return policy_rpo_floor(policy)


@register.inclusion_tag("backups/tags/policy_rpo_guide.html")
def policy_rpo_guide(actor: Actor) -> dict[str, Any]:
    """At registration: the RPO each policy can meet, so an RPO shorter than the dataset's
    default policy allows is seen before it is saved (the dataset page warns after)."""
    rows = [
        {"policy": policy, "floor": policy_rpo_floor(policy)}
        for policy in selectors.policy_list(actor=actor)
    ]
    return {"rows": rows}
