"""Template tags of the lifecycle pages: the legal hold banner other apps' pages include
(a template tag is no Python import, so clients and backups templates may load it)."""

from __future__ import annotations

from typing import Any

from django import template

from lifecycle import selectors

register = template.Library()


@register.inclusion_tag("lifecycle/_hold_banner.html", takes_context=True)
def hold_banner(
    context: template.Context, client: Any = None, dataset: Any = None, holds: Any = None
) -> dict[str, Any]:
    """`{% hold_banner client=client %}` (every active hold of the client),
    `{% hold_banner dataset=dataset %}` (the client-wide holds and the dataset's own) or
    `{% hold_banner holds=holds %}`: a banner per active hold the viewer may see, read through
    the tenant selector with the request's actor."""
    request = context.get("request")
    actor = getattr(request, "actor", None)
    found: list[Any] = []
    if holds is not None:
        found = list(holds)
    elif actor is not None and dataset is not None:
        found = selectors.legal_hold_active_list(
            actor=actor, client=dataset.client, datasets=[dataset]
        )
    elif actor is not None and client is not None:
        found = list(
            selectors.legal_hold_list(actor=actor).filter(client=client, released_at__isnull=True)
        )
    may_release = actor is not None and actor.is_admin
    return {"holds": found, "may_release": may_release, "request": request}
