"""Sockets of an S3 client opened through the caller's egress policy (a guarded `connect`), and
how a refusal is recognised so that it is neither retried nor described beyond "refused"."""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any, Protocol

import urllib3.exceptions
from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

REFUSED = "connection refused by the egress policy"


class GuardedConnect(Protocol):
    """Opens a TCP socket to `host`:`port` where the caller's policy allows, raising
    PermissionError where it does not (kernel.egress.guarded_connect)."""

    def __call__(
        self,
        host: str,
        port: int,
        *,
        timeout: float | None,
        source_address: tuple[str, int] | None,
        socket_options: Sequence[tuple[int, int, int | bytes]] | None,
    ) -> socket.socket: ...


def _guarded_new_conn(conn: HTTPConnection, connect: GuardedConnect) -> socket.socket:
    """urllib3's `_new_conn` through `connect`, with urllib3's errors (botocore translates them
    as usual: a refusal arrives as EndpointConnectionError, marked by its PermissionError)."""
    try:
        sock = connect(
            conn._dns_host,  # as urllib3 connects; TLS still verifies conn.host
            conn.port or conn.default_port,
            timeout=conn.timeout,  # urllib3 resolved its "default" sentinel already
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    except PermissionError as exc:
        raise urllib3.exceptions.NewConnectionError(conn, REFUSED) from exc
    except TimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out."
        ) from exc
    except OSError as exc:
        raise urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection: {exc}"
        ) from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


def guarded_pool_classes(connect: GuardedConnect) -> dict[str, type[HTTPConnectionPool]]:
    """botocore's pool classes, with connections that open their sockets through `connect`."""

    class GuardedAWSHTTPConnection(AWSHTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_new_conn(self, connect)

    class GuardedAWSHTTPSConnection(AWSHTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_new_conn(self, connect)

    class GuardedAWSHTTPConnectionPool(AWSHTTPConnectionPool):
        ConnectionCls = GuardedAWSHTTPConnection

    class GuardedAWSHTTPSConnectionPool(AWSHTTPSConnectionPool):
        ConnectionCls = GuardedAWSHTTPSConnection

    return {"http": GuardedAWSHTTPConnectionPool, "https": GuardedAWSHTTPSConnectionPool}


def refused(exc: BaseException) -> bool:
    """Whether a failure goes back to a refusal of the guarded connect (a PermissionError
    anywhere in its chain; botocore keeps urllib3's error in `kwargs["error"]`)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PermissionError):
            return True
        kwargs = getattr(current, "kwargs", None)
        inner = kwargs.get("error") if isinstance(kwargs, dict) else None
        pending.extend(
            [current.__cause__, current.__context__]
            + ([inner] if isinstance(inner, BaseException) else [])
        )
    return False


def refusal_not_retried(caught_exception: BaseException | None = None, **_: Any) -> None:
    if caught_exception is not None and refused(caught_exception):
        raise caught_exception
