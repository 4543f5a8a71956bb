"""Who is on the other end of a request, for the access log."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestOrigin:
    """The source IP and user agent of a request (services take it, never the request)."""

    source_ip: str | None = None
    user_agent: str = ""


NO_ORIGIN = RequestOrigin()


def request_origin(request: Any) -> RequestOrigin:
    """REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites
    it, and a log that trusts it would record whatever the reader claims."""
    meta = getattr(request, "META", {})
    raw = str(meta.get("REMOTE_ADDR") or "")
    try:
        source_ip: str | None = str(ipaddress.ip_address(raw))
    except ValueError:
        source_ip = None
    return RequestOrigin(source_ip=source_ip, user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:500])
