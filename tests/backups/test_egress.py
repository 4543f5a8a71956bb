"""The egress policy where workers act for a tenant: S3 stores built by the services, the alert
webhook, and "audit now" — each written as the attack it stops.

The S3 endpoint is moto's server behind a counting proxy (tests/faultproxy.py with no faults),
so "no request reached it" is measured, not assumed. Webhook receivers and non-S3 listeners
are real sockets on loopback; host names are answered by an injected resolver.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from backups.models import AlertKind, BackupRun, RestoreRun, RunStatus, Snapshot, Trigger
from backups.services import (
    backup_run_create,
    backup_run_execute,
    restore_request,
    restore_run_execute,
    store_for_location,
)
from backups.services.alerts import alert_raise
from backups.services.notifications import notification_settings_update
from backups.services.posture.reading import NOT_REACHABLE
from backups.services.stores import bucket_settings_store
from backups.storage import EndpointUnreachable, S3ObjectStore
from backups.storage.s3.bodies import DirectBody
from kernel import egress
from tests.backups.conftest import Agency, sample_files
from tests.conftest import World
from tests.faultproxy import FaultProxy
from tests.s3server import free_port

REFUSAL = "endpoint unreachable (connection refused by the egress policy)"


@pytest.fixture
def counted(s3_endpoint: str) -> Iterator[FaultProxy]:
    """moto behind a proxy that only counts: `counted.requests` is what reached the endpoint."""
    with FaultProxy(s3_endpoint, rate=0) as proxy:
        yield proxy


def _back_up(agency: Agency, name: str, target: Any) -> BackupRun:
    dataset = agency.dataset(name, files=sample_files())
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False
    )
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


# --- S3 stores built for a tenant ---


def test_a_location_saved_while_allowed_gets_no_connection_once_the_operator_withdraws_it(
    agency: Agency, counted: FaultProxy, settings: Any, tmp_path: Path
) -> None:
    location = agency.s3_location("On-premises MinIO", endpoint=counted.url)
    first = _back_up(agency, "Before", location)
    assert first.status == RunStatus.SUCCEEDED, first.error
    seen = counted.requests
    assert seen > 0  # the store really goes through the counting proxy

    settings.AGENCYOPS_EGRESS_ALLOW = []
    failed = _back_up(agency, "After", location)

    assert failed.status == RunStatus.FAILED
    assert REFUSAL in failed.error
    assert counted.requests == seen
    # A restore reads through the fast GET path first, then botocore: neither connects.
    restore = restore_request(
        actor=agency.actor,
        snapshot=Snapshot.objects.get(run=first),
        destination_location=agency.primary,
        destination_path="datasets/restored",
        enqueue=False,
    )
    done = restore_run_execute(str(restore.public_id), final_attempt=True)
    assert isinstance(done, RestoreRun)
    assert done.status == RunStatus.FAILED
    assert REFUSAL in done.error
    assert counted.requests == seen


def test_dns_rebinding_gets_no_connection_from_a_backup(
    agency: Agency, counted: FaultProxy, settings: Any
) -> None:
    """The endpoint's name answers a public address when it is saved and the proxy's loopback
    address when the worker connects: the backup fails and nothing reaches the endpoint."""
    port = counted.url.rsplit(":", 1)[1]
    # (moto serves path-style buckets to host names that start with "localstack")
    endpoint = f"http://localstack.rebind.test:{port}"
    answers = {"save": ["93.184.216.34"], "connect": ["127.0.0.1"]}
    phase = ["save"]

    def resolver(host: str) -> list[str]:
        if host != "localstack.rebind.test":
            return egress.system_resolve(host)
        return answers[phase[0]]

    # The bucket itself is made while loopback is still allowed (the test's moto).
    bucket = agency.s3_location("Rebinding", endpoint=counted.url).bucket
    settings.AGENCYOPS_EGRESS_ALLOW = []
    with egress.resolver_use(resolver):
        assert egress.url_check(endpoint, field="endpoint_url") == endpoint
        location = agency.s3_location(
            "Rebinding name", endpoint=endpoint, bucket=bucket, create_bucket=False
        )
        seen = counted.requests
        phase[0] = "connect"
        failed = _back_up(agency, "Rebound", location)
        assert failed.status == RunStatus.FAILED
        assert REFUSAL in failed.error
        assert counted.requests == seen

        # The operator allows the name: the same resolver's answer is what the store reaches.
        settings.AGENCYOPS_EGRESS_ALLOW = ["localstack.rebind.test"]
        allowed = _back_up(agency, "Allowed by name", location)
        assert allowed.status == RunStatus.SUCCEEDED, allowed.error
        assert counted.requests > seen


def test_the_fast_get_path_and_bucket_settings_connect_through_the_guard(
    agency: Agency, counted: FaultProxy, settings: Any
) -> None:
    location = agency.s3_location("Offsite", endpoint=counted.url)
    calls: list[tuple[str, int]] = []

    def recording(host: str, port: int, **options: Any) -> socket.socket:
        calls.append((host, port))
        return egress.guarded_connect(host, port, **options)

    raw = agency.raw_store(location.bucket, counted.url)
    raw.put("backups/probe", b"probe")
    store = S3ObjectStore(
        bucket=location.bucket,
        endpoint_url=counted.url,
        region=location.region,
        access_key_id="testing",
        secret_access_key="testing",
        connect=recording,
    )
    # The first thing this store does is the fast path's own GET on the client's session.
    body = store._direct_open("backups/probe")
    assert isinstance(body, DirectBody)
    assert body.read() == b"probe"
    assert calls == [("127.0.0.1", int(counted.url.rsplit(":", 1)[1]))]

    settings.AGENCYOPS_EGRESS_ALLOW = []
    seen = counted.requests
    for tenant_store in (store_for_location(location), bucket_settings_store(location)):
        assert tenant_store._direct_open("backups/probe") is None
        with pytest.raises(EndpointUnreachable, match=r"egress policy"):
            tenant_store.get("backups/probe")
    assert counted.requests == seen


def test_a_refused_connection_is_not_retried(agency: Agency, settings: Any) -> None:
    location = agency.s3_location("Refused", create_bucket=False)
    settings.AGENCYOPS_EGRESS_ALLOW = []
    store = store_for_location(location)
    calls: list[int] = []
    assert isinstance(store, S3ObjectStore)
    store.client.meta.events.register("before-send.s3", lambda **_: calls.append(1))
    with pytest.raises(EndpointUnreachable, match="egress policy"):
        store.put("backups/x", b"x")
    assert calls == [1]  # one attempt of five: retrying a refusal changes nothing


# --- the alert webhook ---


class Receiver:
    """A webhook receiver on loopback: answers each POST with `status`, counts them."""

    def __init__(self, status: int) -> None:
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts += 1
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                body = f"<h1>{status} from the internal admin panel</h1>".encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # stdlib name
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receivers() -> Iterator[dict[int, Receiver]]:
    made = {status: Receiver(status) for status in (200, 404, 302)}
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://localhost/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_put_notification_settings_refuses_internal_webhooks(
    world: World, as_user: Any, settings: Any, url: str
) -> None:
    settings.AGENCYOPS_EGRESS_ALLOW = []
    admin = as_user(world.admin)
    refused = admin.put(
        "/api/v1/notification-settings/", {"email_enabled": True, "webhook_url": url}, format="json"
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["fields"] == {"webhook_url": [egress.REFUSED_MESSAGE]}
    assert admin.get("/api/v1/notification-settings/").json()["webhook_configured"] is False


def test_put_notification_settings_accepts_allowed_hosts_but_never_metadata(
    world: World, as_user: Any, settings: Any
) -> None:
    admin = as_user(world.admin)
    settings.AGENCYOPS_EGRESS_ALLOW = ["127.0.0.1", "169.254.0.0/16"]
    saved = admin.put(
        "/api/v1/notification-settings/",
        {"email_enabled": True, "webhook_url": "http://127.0.0.1:9000/hook"},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    for url in ("http://169.254.169.254/latest/meta-data/", "http://user:pw@127.0.0.1:9000/"):
        refused = admin.put(
            "/api/v1/notification-settings/",
            {"email_enabled": True, "webhook_url": url},
            format="json",
        )
        assert refused.status_code == 400, url
        assert "webhook_url" in refused.json()["fields"]


def _test_webhook(admin: Any, url: str) -> dict[str, Any]:
    saved = admin.put(
        "/api/v1/notification-settings/", {"email_enabled": True, "webhook_url": url}, format="json"
    )
    assert saved.status_code == 200, saved.content
    answer = admin.post("/api/v1/notification-settings/test/", {"channel": "webhook"})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_test_webhook_is_no_port_scanner(
    world: World, as_user: Any, receivers: dict[int, Receiver], settings: Any
) -> None:
    """A closed port, an open one answering 404 and one answering a redirect read the same;
    only a 2xx reads "reachable"."""
    admin = as_user(world.admin)
    closed = _test_webhook(admin, f"http://127.0.0.1:{free_port()}/hook")
    not_found = _test_webhook(admin, receivers[404].url)
    redirect = _test_webhook(admin, receivers[302].url)
    assert closed == not_found == redirect
    assert closed == {
        "channel": "webhook",
        "sent": False,
        "detail": "Not reachable: no success (2xx) answer came back.",
    }
    assert (receivers[404].posts, receivers[302].posts) == (1, 1)  # they were really asked

    reachable = _test_webhook(admin, receivers[200].url)
    assert reachable == {
        "channel": "webhook",
        "sent": True,
        "detail": "Reachable: posted to 127.0.0.1.",
    }
    assert receivers[200].posts == 1

    # Saved while allowed, then withdrawn by the operator: refused before any connection,
    # and it reads like every other failure.
    settings.AGENCYOPS_EGRESS_ALLOW = []
    withdrawn = admin.post("/api/v1/notification-settings/test/", {"channel": "webhook"})
    assert withdrawn.json() == closed
    assert receivers[200].posts == 1


def test_a_failed_delivery_stores_the_same_reason_for_every_cause(
    world: World, receivers: dict[int, Receiver], django_capture_on_commit_callbacks: Any
) -> None:
    errors = []
    for n, url in enumerate((f"http://127.0.0.1:{free_port()}/hook", receivers[404].url)):
        notification_settings_update(
            actor=world.actor(world.admin), email_enabled=False, webhook_url=url
        )
        with django_capture_on_commit_callbacks(execute=True):
            alert = alert_raise(
                organization=world.org,
                kind=AlertKind.POSTURE_REGRESSION,
                incident_key=f"posture:{world.location.public_id}:versioning:{n}",
                title="Versioning suspended",
                message="Versioning is Suspended.",
                location=world.location,
            )
        errors.append(alert.deliveries.get().error)
    assert errors == ["webhook at 127.0.0.1 not reachable: no success (2xx) answer came back."] * 2


# --- "audit now" ---


class NotS3:
    """A listener that is no S3 service: `mode` says how it answers any request."""

    ANSWERS = {
        "html-404": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
        b"Content-Length: 22\r\nConnection: close\r\n\r\n<h1>Admin console</h1>",
        "html-200": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        b"Content-Length: 22\r\nConnection: close\r\n\r\n<h1>Admin console</h1>",
        "empty-200": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "json-403": b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
        b'Content-Length: 17\r\nConnection: close\r\n\r\n{"error":"nope!"}',
        "banner": b"SSH-2.0-OpenSSH_9.6\r\n",
        "hang-up": b"",
    }

    def __init__(self, mode: str) -> None:
        self.answer = self.ANSWERS[mode]
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def _audit_now(admin: Any, location: Any) -> dict[str, Any]:
    answer = admin.post("/api/v1/posture-audits/", {"location": str(location.public_id)})
    assert answer.status_code == 201, answer.content
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("mode", list(NotS3.ANSWERS))
def test_audit_now_is_no_port_scanner(
    agency: Agency, as_user: Any, settings: Any, mode: str
) -> None:
    admin = as_user(agency.admin)
    closed = agency.s3_location(
        "Closed port", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )
    listener = NotS3(mode)
    try:
        open_port = agency.s3_location(
            "Open port", endpoint=f"http://127.0.0.1:{listener.port}", create_bucket=False
        )
        audits = [_audit_now(admin, closed), _audit_now(admin, open_port)]
        assert listener.accepted >= 1  # the open port was really asked
    finally:
        listener.close()
    settings.AGENCYOPS_EGRESS_ALLOW = []
    audits.append(_audit_now(admin, closed))  # refused by the policy: no connection at all

    for audit in audits:
        assert audit["reachable"] is False
        assert audit["error"] == NOT_REACHABLE
        assert audit["facts"] == {}
    findings = {
        tuple((f["check"], f["severity"], f["message"]) for f in audit["findings"])
        for audit in audits
    }
    assert len(findings) == 1, findings
    ((check, severity, message),) = findings.pop()
    assert (check, severity) == ("reachable", "critical")
    assert NOT_REACHABLE in message


def test_audit_now_keeps_the_error_codes_a_real_s3_service_answers(
    agency: Agency, as_user: Any, counted: FaultProxy
) -> None:
    missing = agency.s3_location("Missing bucket", endpoint=counted.url, create_bucket=False)
    audit = _audit_now(as_user(agency.admin), missing)
    assert audit["reachable"] is False
    assert "NoSuchBucket" in audit["error"]

    present = agency.s3_location("Present bucket", endpoint=counted.url)
    assert _audit_now(as_user(agency.admin), present)["reachable"] is True
