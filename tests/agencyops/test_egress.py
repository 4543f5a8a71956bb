"""The egress policy (kernel.egress), written as the attacks it stops: a tenant's URL that
names loopback, the private network or the cloud's metadata service, a name that resolves
there, a name that changes its answer between save and connect (DNS rebinding).

Connections are real sockets on loopback; names are answered by an injected resolver, so no
test depends on the machine's DNS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kernel import egress
from kernel.exceptions import ValidationFailed

METADATA = ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")


def _allowed(address: str, allow: Sequence[str], settings: Any, *, host: bool = False) -> bool:
    settings.AGENCYOPS_EGRESS_ALLOW = list(allow)
    return egress.address_allowed(ipaddress.ip_address(address), host_allowed=host)


# --- the address table ---


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.5",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.10",
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "169.254.1.1",  # link-local
        "224.0.0.251",  # multicast
        "239.255.255.250",
        "0.0.0.0",  # noqa: S104 - judged, never bound; a connect to it reaches this host
        "0.1.2.3",
        "255.255.255.255",
        "240.0.0.1",  # reserved
        "192.0.2.10",  # documentation: never a real service
        "::1",
        "::",
        "fc00::1",  # ULA
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",  # IPv4-mapped: judged as 127.0.0.1
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
        *METADATA,
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, settings: Any) -> None:
    assert not _allowed(address, [], settings)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above
        "172.32.0.1",  # just above 172.16/12
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",  # NAT64 of a public address
    ],
)
def test_public_addresses_are_allowed(address: str, settings: Any) -> None:
    assert _allowed(address, [], settings)


@pytest.mark.parametrize("address", METADATA)
@pytest.mark.parametrize(
    "allow",
    [
        ["169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"],
        ["169.254.0.0/16", "100.64.0.0/10", "fd00::/8"],
        ["0.0.0.0/0", "::/0"],
    ],
)
def test_metadata_is_never_allowed_even_when_listed(
    address: str, allow: list[str], settings: Any
) -> None:
    assert not _allowed(address, allow, settings)
    assert not _allowed(address, allow, settings, host=True)
    if "." in address:
        assert not _allowed(f"::ffff:{address}", allow, settings)


def test_allow_entries_are_addresses_cidrs_and_host_names(settings: Any) -> None:
    assert _allowed("127.0.0.1", ["127.0.0.1"], settings)
    assert _allowed("::ffff:127.0.0.1", ["127.0.0.1"], settings)  # mapped: the same host
    assert not _allowed("127.0.0.2", ["127.0.0.1"], settings)
    assert not _allowed("::1", ["127.0.0.1"], settings)
    assert _allowed("10.20.30.40", ["10.0.0.0/8"], settings)
    assert _allowed("10.20.30.40", [" 10.20.0.0/16 ", ""], settings)
    assert not _allowed("192.168.0.1", ["10.0.0.0/8"], settings)
    assert _allowed("fd12::7", ["fd00::/8"], settings)
    assert _allowed("::1", ["[::1]"], settings)
    # An IPv6 network never covers an IPv4 address by accident of their integer values.
    assert not _allowed("127.0.0.1", ["::/96"], settings)
    # A host entry allows that name's internal answers (see the resolver tests), not addresses.
    assert not _allowed("10.0.0.5", ["minio.internal"], settings)
    assert _allowed("10.0.0.5", ["minio.internal"], settings, host=True)


# --- saving a URL ---


class Resolver:
    """Answers names from a table; `phase` switches the table (save time, connect time)."""

    def __init__(self, **phases: dict[str, list[str]]) -> None:
        self.phases = phases
        self.phase = next(iter(phases))
        self.asked: list[tuple[str, str]] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append((self.phase, host))
        table = self.phases[self.phase]
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]


LOCAL_NAMES = Resolver(now={"localhost": ["127.0.0.1", "::1"]})


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1:9000", ["127.0.0.1"]),
        ("http://[::1]/", ["::1"]),
        ("http://10.0.0.5", ["10.0.0.0/8"]),
        ("http://localhost", ["localhost"]),
        ("http://localhost:8080/hook", ["127.0.0.1", "::1"]),
        ("https://[::ffff:127.0.0.1]:9000", ["127.0.0.1"]),
        ("http://100.64.1.1", ["100.64.0.0/10"]),
    ],
)
def test_url_check_refuses_internal_hosts_unless_the_operator_allows_them(
    url: str, allow: list[str], settings: Any
) -> None:
    settings.AGENCYOPS_EGRESS_ALLOW = []
    with pytest.raises(ValidationFailed) as refused:
        egress.url_check(url, field="endpoint_url", resolver=LOCAL_NAMES)
    assert refused.value.fields == {"endpoint_url": [egress.REFUSED_MESSAGE]}
    # The refusal says nothing of what is there: the same words for every address.
    assert refused.value.message == egress.REFUSED_MESSAGE

    settings.AGENCYOPS_EGRESS_ALLOW = allow
    assert egress.url_check(f"  {url} ", field="endpoint_url", resolver=LOCAL_NAMES) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://100.100.100.200/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.internal/",  # an allowed name that resolves to metadata
    ],
)
def test_url_check_never_accepts_metadata(url: str, settings: Any) -> None:
    resolver = Resolver(now={"metadata.internal": ["169.254.169.254"]})
    settings.AGENCYOPS_EGRESS_ALLOW = ["169.254.0.0/16", "0.0.0.0/0", "::/0", "metadata.internal"]
    with pytest.raises(ValidationFailed):
        egress.url_check(url, field="webhook_url", resolver=resolver)


def test_url_check_refuses_a_name_when_any_of_its_answers_is_refused(settings: Any) -> None:
    settings.AGENCYOPS_EGRESS_ALLOW = []
    resolver = Resolver(
        now={
            "public.example": ["93.184.216.34"],
            "mixed.example": ["93.184.216.34", "10.0.0.1"],
            "inside.example": ["192.168.0.9"],
        }
    )
    assert egress.url_check("https://public.example/x", field="f", resolver=resolver)
    for name in ("mixed.example", "inside.example", "INSIDE.example."):
        with pytest.raises(ValidationFailed):
            egress.url_check(f"https://{name}/x", field="f", resolver=resolver)
    # A name that does not resolve now is accepted: the connection decides then.
    assert egress.url_check("https://later.example", field="f", resolver=resolver)
    # An allowed name may resolve inside; other names still may not.
    settings.AGENCYOPS_EGRESS_ALLOW = ["inside.example"]
    assert egress.url_check("https://inside.example/x", field="f", resolver=resolver)
    with pytest.raises(ValidationFailed):
        egress.url_check("https://mixed.example/x", field="f", resolver=resolver)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.test/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "http or https"),
        ("http://user:secret@example.test/", "user name or password"),
        ("http://user@example.test/", "user name or password"),
        ("http:///no-host", "no host"),
        ("http://exa mple.test/", "spaces"),
        ("http://example.test:99999/", "not valid"),
    ],
)
def test_url_check_refuses_other_schemes_credentials_and_malformed_urls(
    url: str, words: str
) -> None:
    with pytest.raises(ValidationFailed, match=words) as refused:
        egress.url_check(url, field="endpoint_url", resolver=Resolver(now={}))
    assert set(refused.value.fields) == {"endpoint_url"}
    assert "secret" not in str(refused.value.fields)


def test_url_check_with_the_system_resolver_refuses_localhost(settings: Any) -> None:
    # No injected resolver: what the server itself answers for "localhost" (the hosts file).
    settings.AGENCYOPS_EGRESS_ALLOW = []
    with pytest.raises(ValidationFailed):
        egress.url_check("http://localhost:9000", field="endpoint_url")


# --- connecting ---


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that accepts nothing by itself: a connection made to it
    waits in its backlog, so a test can tell whether anything connected."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _connected(listener: socket.socket) -> int:
    """How many connections reached the listener (a loopback connect completes before
    connect() returns, so none can still be on its way)."""
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_guarded_connect_connects_where_allowed_and_refuses_elsewhere(
    listener: socket.socket, settings: Any
) -> None:
    port = listener.getsockname()[1]
    settings.AGENCYOPS_EGRESS_ALLOW = ["127.0.0.1"]
    with egress.guarded_connect("127.0.0.1", port, timeout=2) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    assert _connected(listener) == 1

    settings.AGENCYOPS_EGRESS_ALLOW = []
    with pytest.raises(egress.EgressRefused) as refused:
        egress.guarded_connect("127.0.0.1", port, timeout=2)
    assert isinstance(refused.value, OSError)
    assert str(refused.value) == "connection refused by the egress policy"
    assert _connected(listener) == 0


def test_dns_rebinding_gets_no_connection(listener: socket.socket, settings: Any) -> None:
    """The name answers a public address when the URL is saved and loopback when the worker
    connects: the check at save time passes, the connection is still refused."""
    port = listener.getsockname()[1]
    settings.AGENCYOPS_EGRESS_ALLOW = []
    resolver = Resolver(save={"s3-rebind": ["93.184.216.34"]}, connect={"s3-rebind": ["127.0.0.1"]})
    url = f"http://s3-rebind:{port}"
    assert egress.url_check(url, field="endpoint_url", resolver=resolver) == url
    resolver.phase = "connect"
    with pytest.raises(egress.EgressRefused):
        egress.guarded_connect("s3-rebind", port, timeout=2, resolver=resolver)
    assert resolver.asked == [("save", "s3-rebind"), ("connect", "s3-rebind")]
    assert _connected(listener) == 0
    # The same name allowed by the operator: the resolver's answer is what is connected to.
    settings.AGENCYOPS_EGRESS_ALLOW = ["s3-rebind"]
    with egress.guarded_connect("s3-rebind", port, timeout=2, resolver=resolver) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    assert _connected(listener) == 1


def test_refused_answers_are_dropped_and_an_allowed_one_is_connected(settings: Any) -> None:
    # Two listeners on one port: 127.0.0.2 (loopback, not allowed) and 127.0.0.1 (allowed).
    first = socket.socket()
    first.bind(("127.0.0.1", 0))
    port = first.getsockname()[1]
    second = socket.socket()
    second.bind(("127.0.0.2", port))
    for sock in (first, second):
        sock.listen(4)
        sock.setblocking(False)
    try:
        settings.AGENCYOPS_EGRESS_ALLOW = ["127.0.0.1"]
        resolver = Resolver(now={"two.example": ["127.0.0.2", "169.254.169.254", "127.0.0.1"]})
        with egress.guarded_connect("two.example", port, timeout=2, resolver=resolver) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)
        assert (_connected(first), _connected(second)) == (1, 0)
    finally:
        first.close()
        second.close()


def test_the_injected_resolver_reaches_every_connection(
    listener: socket.socket, settings: Any
) -> None:
    port = listener.getsockname()[1]
    settings.AGENCYOPS_EGRESS_ALLOW = []
    resolver = Resolver(now={"s3-rebind": ["127.0.0.1"]})
    with egress.resolver_use(resolver), pytest.raises(egress.EgressRefused):
        egress.guarded_connect("s3-rebind", port, timeout=2)
    assert resolver.asked == [("now", "s3-rebind")]
    with pytest.raises(socket.gaierror):
        egress.guarded_connect("s3-rebind.invalid", port, timeout=2, resolver=resolver)
    assert _connected(listener) == 0


# --- the urllib3 pieces ---


class _Receiver:
    """An HTTP(S) server on loopback that answers every request with `status` and counts."""

    def __init__(self, status: int = 200, context: ssl.SSLContext | None = None) -> None:
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.requests += 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # stdlib name
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_guarded_pool_manager_connects_only_where_allowed(settings: Any) -> None:
    receiver = _Receiver()
    try:
        settings.AGENCYOPS_EGRESS_ALLOW = ["127.0.0.1"]
        with egress.GuardedPoolManager() as http:
            answer = http.request("GET", f"http://127.0.0.1:{receiver.port}/", retries=False)
        assert (answer.status, receiver.requests) == (200, 1)

        settings.AGENCYOPS_EGRESS_ALLOW = []
        with (
            egress.GuardedPoolManager() as http,
            pytest.raises(urllib3.exceptions.NewConnectionError) as refused,
        ):
            http.request("GET", f"http://127.0.0.1:{receiver.port}/", retries=False)
        assert isinstance(refused.value.__cause__, egress.EgressRefused)
        assert receiver.requests == 1
    finally:
        receiver.close()


def _tls_files(directory: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA file and a server context whose certificate is for `name` only."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context


def test_tls_through_the_guard_still_verifies_the_url_host_name(
    tmp_path: Path, settings: Any
) -> None:
    """The guard connects to the resolved address; the certificate is still checked against
    the URL's name, so a name pointed at someone else's server fails the handshake."""
    ca_file, context = _tls_files(tmp_path, "hook-right")
    receiver = _Receiver(context=context)
    resolver = Resolver(now={"hook-right": ["127.0.0.1"], "hook-wrong": ["127.0.0.1"]})
    settings.AGENCYOPS_EGRESS_ALLOW = ["hook-right", "hook-wrong"]
    try:
        with (
            egress.resolver_use(resolver),
            egress.GuardedPoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca_file)) as http,
        ):
            answer = http.request("GET", f"https://hook-right:{receiver.port}/", retries=False)
            assert answer.status == 200
            with pytest.raises(urllib3.exceptions.SSLError, match="hook-wrong"):
                http.request("GET", f"https://hook-wrong:{receiver.port}/", retries=False)
        assert receiver.requests == 1
        assert {host for _, host in resolver.asked} == {"hook-right", "hook-wrong"}
    finally:
        receiver.close()
