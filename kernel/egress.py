"""Egress is the operator's to grant: where a worker may connect on a tenant's behalf.

A tenant names hosts (a storage location's endpoint, the alert webhook); the workers connect
there. Without a rule, those names reach what the server can reach and the tenant cannot: the
loopback services, the private network, the cloud's metadata service (and its credentials).
The rule: no connection made for a tenant goes to a loopback, private (RFC 1918, IPv6 ULA),
link-local, shared (CGNAT 100.64.0.0/10), multicast, unspecified, reserved or otherwise
non-global address unless the host name or the address is in the operator's allow list
(`AGENCYOPS_EGRESS_ALLOW`: names, addresses or CIDRs). The metadata addresses are never
reachable, listed or not. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) and a NAT64 one
(64:ff9b::a.b.c.d) are judged as the IPv4 address they carry.

Two moments apply the rule:
- saving a URL (`url_check`): IP literals and names that resolve (now) to refused addresses
  are refused with a field message; a name that does not resolve yet is accepted.
- connecting (`guarded_connect`, and the urllib3 connections built on it): the host is
  resolved once, refused addresses are dropped and the socket connects to an allowed one, so
  the address judged is the address connected to; a name that answered a public address when
  it was saved and a loopback one now (DNS rebinding) gets no connection.

Refusals say nothing of what lies behind the address (`EgressRefused` has one message), so
they cannot be used to map the private network.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from kernel.exceptions import ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name to the addresses it answers now (text, as getaddrinfo gives them).
Resolver = Callable[[str], Sequence[str]]
SocketOptions = Sequence[tuple[int, int, int | bytes]]

# Cloud instance metadata (AWS/GCP/Azure/OpenStack, AWS over IPv6, ECS task credentials,
# Alibaba): the server's own credentials live there. Never reachable, even when listed.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: someone's inside network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

REFUSED_MESSAGE = (
    "AgencyOps does not connect to internal addresses (loopback, private, link-local, cloud "
    "metadata) for an organization; give the service's public address, or ask the operator "
    "to allow this host (AGENCYOPS_EGRESS_ALLOW)."
)


class EgressRefused(PermissionError):
    """A connection the egress policy does not allow. The message is the same for every
    refusal: it names neither the host nor the address."""

    def __init__(self) -> None:
        super().__init__("connection refused by the egress policy")


# --- the rule ---


@dataclass(frozen=True)
class _Allowed:
    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@functools.lru_cache(maxsize=8)
def _parse_allow(entries: tuple[str, ...]) -> _Allowed:
    names: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(_host_name(entry))
    return _Allowed(frozenset(names), tuple(networks))


def _allowed() -> _Allowed:
    # Read at call time: the operator's setting, and tests that change it.
    return _parse_allow(tuple(str(e) for e in settings.AGENCYOPS_EGRESS_ALLOW))


def _host_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _judged(address: Address) -> Address:
    """The address whose rules apply: IPv4 for a mapped or NAT64 IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.scope_id:
            return ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
    return address


def address_internal(address: Address) -> bool:
    """Whether the address is one a tenant may not reach by default: loopback, private,
    link-local, shared (CGNAT), multicast, unspecified, reserved, or not globally routed."""
    address = _judged(address)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in _SHARED
        or not address.is_global
    )


def address_allowed(address: Address, *, host_allowed: bool = False) -> bool:
    """Whether a connection for a tenant may go to this address: never to metadata; to an
    internal address only when it lies in an allowed network or its host name is allowed."""
    judged = _judged(address)
    if judged in METADATA_ADDRESSES:
        return False
    if not address_internal(judged):
        return True
    if host_allowed:
        return True
    return any(
        judged.version == network.version and judged in network for network in _allowed().networks
    )


# --- resolving ---


def system_resolve(host: str) -> list[str]:
    """The addresses the system resolver answers for `host`, in its order, without repeats."""
    found: dict[str, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
        found[str(sockaddr[0])] = None
    return list(found)


_resolver: Resolver = system_resolve


@contextlib.contextmanager
def resolver_use(resolver: Resolver) -> Iterator[None]:
    """Resolve every name with `resolver` while the block runs (for tests: a name that answers
    differently when saved and when connected to). Threads started inside see it too."""
    global _resolver
    previous = _resolver
    _resolver = resolver
    try:
        yield
    finally:
        _resolver = previous


def _resolve(host: str, resolver: Resolver | None) -> list[Address]:
    addresses: list[Address] = []
    for text in (resolver or _resolver)(host):
        found = _literal(text)
        if found is not None:
            addresses.append(found)
    return addresses


# --- saving a URL ---


def _refuse(field: str, message: str, field_message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: field_message})


def host_permitted(host: str, *, resolver: Resolver | None = None) -> bool:
    """Whether a host may be saved: an IP literal by the rule; a name when it resolves to no
    refused address (or does not resolve yet: the connection decides then)."""
    name = _host_name(host)
    literal = _literal(name)
    if literal is not None:
        return address_allowed(literal)
    try:
        addresses = _resolve(name, resolver)
    except (OSError, UnicodeError):
        return True
    host_allowed = name in _allowed().names
    return all(address_allowed(a, host_allowed=host_allowed) for a in addresses)


def url_check(url: str, *, field: str, resolver: Resolver | None = None) -> str:
    """A URL a worker will connect to for a tenant, cleaned for saving. The rule: http or
    https with a host; no user or password in it (secrets never live in URLs, which end up in
    logs and error messages); its host is not an internal address (see the module docstring)
    and does not resolve to one, unless the operator allows it; metadata addresses never.
    Refusals are ValidationFailed with a message for `field`."""
    cleaned = url.strip()
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise _refuse(field, "The URL contains spaces or control characters.", "Give a URL.")
    try:
        parts = urlsplit(cleaned)
        port = parts.port
    except ValueError:
        raise _refuse(field, "The URL is not valid.", "Give an http:// or https:// URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _refuse(
            field, "The URL must be an http or https URL.", "Give an http:// or https:// URL."
        )
    if "@" in parts.netloc:
        raise _refuse(
            field,
            "The URL must not contain a user name or password.",
            "Remove the user name and password from the URL; give credentials separately.",
        )
    host = parts.hostname or ""
    if not host or port == 0:
        raise _refuse(field, "The URL has no host.", "Give an http:// or https:// URL.")
    if _literal(_host_name(host)) is None:
        try:
            _host_name(host).encode("idna")
        except UnicodeError:
            raise _refuse(field, "The URL's host name is not valid.", "Give a host name.") from None
    if not host_permitted(host, resolver=resolver):
        raise _refuse(field, REFUSED_MESSAGE, REFUSED_MESSAGE)
    return cleaned


def address_pick(host: str, *, resolver: Resolver | None = None) -> str:
    """The one address a connection made by another program (git, pg_dump, mariadb-dump) for a
    tenant goes to: the host resolved once, here, and judged by the rule; the program is then
    given this address, never the name, so a name that answers differently later (DNS
    rebinding) cannot move it. EgressRefused when no address is allowed; socket.gaierror when
    the name does not resolve."""
    name = _host_name(host)
    literal = _literal(name)
    if literal is not None:
        if not address_allowed(literal):
            raise EgressRefused()
        return str(literal)
    try:
        candidates = _resolve(name, resolver)
    except UnicodeError:
        raise socket.gaierror(socket.EAI_NONAME, "not a valid host name") from None
    if not candidates:
        raise socket.gaierror(socket.EAI_NONAME, "no address found")
    host_allowed = name in _allowed().names
    for address in candidates:
        if address_allowed(address, host_allowed=host_allowed):
            return str(address)
    raise EgressRefused()


# --- connecting ---


def _sockaddr(address: Address, port: int) -> tuple[socket.AddressFamily, Any]:
    info = socket.getaddrinfo(
        str(address), port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )[0]
    return info[0], info[4]


def guarded_connect(
    host: str,
    port: int,
    *,
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    socket_options: SocketOptions | None = None,
    resolver: Resolver | None = None,
) -> socket.socket:
    """A TCP socket to `host`:`port`, connected to an address the rule allows (tried in the
    resolver's order). Resolution happens once, here, so the address judged is the address
    connected to. EgressRefused when no address is allowed; socket.gaierror when the name
    does not resolve; the last OSError when no allowed address answered."""
    name = _host_name(host)
    literal = _literal(name)
    if literal is not None:
        candidates = [literal]
        host_allowed = False
    else:
        try:
            candidates = _resolve(name, resolver)
        except UnicodeError:
            raise socket.gaierror(socket.EAI_NONAME, "not a valid host name") from None
        host_allowed = name in _allowed().names
        if not candidates:
            raise socket.gaierror(socket.EAI_NONAME, "no address found")
    permitted = [a for a in candidates if address_allowed(a, host_allowed=host_allowed)]
    if not permitted:
        raise EgressRefused()
    *others, last = permitted
    for address in others:
        with contextlib.suppress(OSError):
            return _connect_to(address, port, timeout, source_address, socket_options)
    return _connect_to(last, port, timeout, source_address, socket_options)


def _connect_to(
    address: Address,
    port: int,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: SocketOptions | None,
) -> socket.socket:
    family, sockaddr = _sockaddr(address, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def _new_conn(conn: HTTPConnection) -> socket.socket:
    """urllib3's `_new_conn`, connecting through `guarded_connect`; its errors as urllib3's."""
    try:
        sock = guarded_connect(
            conn._dns_host,  # the host as given, brackets stripped; TLS still checks conn.host
            conn.port or conn.default_port,
            timeout=conn.timeout,  # urllib3 resolved its "default" sentinel already
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except EgressRefused as exc:
        raise NewConnectionError(conn, str(exc)) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


class GuardedHTTPConnection(HTTPConnection):
    """An HTTP connection whose socket goes only where the egress policy allows."""

    def _new_conn(self) -> socket.socket:
        return _new_conn(self)


class GuardedHTTPSConnection(HTTPSConnection):
    """An HTTPS connection whose socket goes only where the egress policy allows; the TLS
    handshake still verifies the certificate against the URL's host name."""

    def _new_conn(self) -> socket.socket:
        return _new_conn(self)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedPoolManager(PoolManager):
    """A urllib3 PoolManager for plain HTTP clients acting for a tenant (webhooks): every
    connection it opens is guarded. It uses no proxy."""

    def __init__(self, num_pools: int = 4, headers: dict[str, str] | None = None, **kw: Any):
        super().__init__(num_pools=num_pools, headers=headers, **kw)
        self.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }
