"""A loopback HTTP proxy in front of an S3 endpoint that breaks a set share of requests.

boto3 is pointed at the proxy as if it were the service. For each request the proxy draws from
a seeded random generator; at `rate` it injects one fault instead of (or on top of) forwarding:

- ``slowdown``: 503 with S3's ``SlowDown`` error body (throttling), request not forwarded;
- ``internal``: 500 ``InternalError``, request not forwarded;
- ``reset``: the request is forwarded, then the connection is reset after part of the response
  body (the client saw headers and some bytes; the server did the work);
- ``truncate``: the request is forwarded, the full Content-Length is announced but only part of
  the body is sent before the connection closes;
- ``delay``: the request is forwarded and answered normally after a pause.

``reset`` and ``truncate`` after forwarding are the nasty ones: a PUT took effect although the
client saw a failure, and a GET's body stops midway. Every injected fault is counted by kind so
the reliability table can report what was injected, and a run can stop injecting (``rate = 0``)
to let the system recover.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("slowdown", "internal", "reset", "truncate", "delay")
# Headers that describe one hop, not the message (RFC 9110 §7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}


class FaultProxy:
    """Run with `with FaultProxy(upstream, rate=0.05, seed=1) as proxy: proxy.url`."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.05,
        seed: int = 0,
        kinds: Sequence[str] = FAULT_KINDS,
        delay_seconds: float = 0.3,
    ) -> None:
        if not upstream.startswith("http://"):
            raise ValueError("the proxy forwards plain HTTP on loopback only")
        host, _, port = upstream.removeprefix("http://").rstrip("/").partition(":")
        self.upstream_host = host
        self.upstream_port = int(port or 80)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.delay_seconds = delay_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.upstream_connections = threading.local()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def faults(self) -> int:
        return sum(self.injected.values())

    def draw(self) -> str | None:
        """This request's fault, or None; counted under the lock so totals are exact."""
        with self._lock:
            self.requests += 1
            if self.rate <= 0 or self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def cut_point(self, length: int) -> int:
        with self._lock:
            return self._random.randint(0, max(0, length - 1))


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the test reads the counters, not a log

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        # One upstream connection per handler thread (one per client connection), reused.
        local = self.owner.upstream_connections
        upstream: http.client.HTTPConnection | None = getattr(local, "conn", None)
        if upstream is None:
            upstream = http.client.HTTPConnection(
                self.owner.upstream_host, self.owner.upstream_port, timeout=60
            )
            local.conn = upstream
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            upstream.close()
            local.conn = None
            raise
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return response.status, response.reason, kept, data

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>faultproxy</RequestId></Error>"
        ).encode()
        self._send(status, "Injected", [("Content-Type", "application/xml")], body)

    def _abort(self) -> None:
        """Close with RST rather than FIN: the client sees a connection reset."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _handle(self) -> None:
        body = self._read_body()
        fault = self.owner.draw()
        if fault == "slowdown":
            self._error(503, "SlowDown", "Please reduce your request rate.")
            return
        if fault == "internal":
            self._error(500, "InternalError", "We encountered an internal error. Please try again.")
            return
        try:
            status, reason, headers, data = self._forward(body)
        except (OSError, http.client.HTTPException):
            self._error(502, "BadGateway", "upstream unreachable")
            return
        if fault == "delay":
            time.sleep(self.owner.delay_seconds)
        if fault in ("reset", "truncate") and self.command != "HEAD":
            cut = self.owner.cut_point(len(data))
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in ("content-length", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data[:cut])
            if fault == "reset":
                self._abort()
            self.close_connection = True
            return
        self._send(status, reason, headers, data)

    do_GET = _handle  # noqa: N815 - http.server dispatches on these names
    do_PUT = _handle  # noqa: N815
    do_POST = _handle  # noqa: N815
    do_DELETE = _handle  # noqa: N815
    do_HEAD = _handle  # noqa: N815


@contextlib.contextmanager
def fault_proxy(upstream: str, **options: Any) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, **options) as proxy:
        yield proxy
