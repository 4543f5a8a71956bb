"""S3 server access logs: the documented format, quoted fields, '-' values, malformed lines,
and an import that is idempotent by log object and line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backups.services import repository_base
from backups.storage import LocalObjectStore
from clients import services as inventory
from kernel.tenancy import Actor
from lifecycle import services
from lifecycle.models import AccessEvent, StorageLogObject
from tests.conftest import World

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
# The example line of the AWS documentation (server access log format), verbatim.
DOCUMENTED = (
    f"{OWNER} amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 {OWNER} "
    '3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" '
    '200 - 113 - 7 - "-" "S3Console/0.4" - '
    "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 "
    "ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com "
    "TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"
)


def _line(bucket: str, key: str, *, requester: str = "arn:aws:iam::123456789012:user/eve",
          operation: str = "REST.GET.OBJECT", agent: str = "aws-cli/2.15 Python/3.11",
          time: str = "26/Nov/2026:10:15:00 +0000") -> str:  # fmt: skip
    return (
        f"{OWNER} {bucket} [{time}] 198.51.100.7 {requester} REQ123 {operation} {key} "
        f'"GET /{bucket}/{key} HTTP/1.1" 200 - 2048 2048 12 10 "-" "{agent}" - HOSTID= '
        "SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader s3.amazonaws.com TLSv1.3 - -"
    )


def test_the_documented_example_line() -> None:
    record = services.s3_log_line_parse(DOCUMENTED)
    assert record.bucket == "amzn-s3-demo-bucket1"
    assert record.time == datetime(2019, 2, 6, 0, 0, 38, tzinfo=UTC)
    assert record.remote_ip == "192.0.2.3"
    assert record.requester == OWNER
    assert record.operation == "REST.GET.VERSIONING"
    assert record.key is None  # '-'
    assert record.request_uri == "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1"
    assert (record.http_status, record.error_code, record.bytes_sent) == (200, None, 113)
    assert (record.object_size, record.total_time, record.turn_around_time) == (None, 7, None)
    assert record.referer is None  # a quoted "-"
    assert record.user_agent == "S3Console/0.4"
    assert record.extra["signature_version"] == "SigV4"
    assert record.extra["tls_version"] == "TLSV1.2"
    assert record.extra["acl_required"] == "Yes"


def test_quoted_fields_keep_spaces_and_escaped_quotes_and_keys_are_decoded() -> None:
    line = _line("b", "data/my%20file.csv", agent='Mozilla/5.0 (X11; Linux) \\"quoted\\"')
    record = services.s3_log_line_parse(line)
    assert record.key == "data/my file.csv"
    assert record.user_agent == 'Mozilla/5.0 (X11; Linux) "quoted"'
    assert record.request_uri == "GET /b/data/my%20file.csv HTTP/1.1"


def test_older_lines_without_the_newer_trailing_fields_parse() -> None:
    short = " ".join(_line("b", "k").split(" ")[:21])  # up to the user agent
    record = services.s3_log_line_parse(short)
    assert record.user_agent == "aws-cli/2.15 Python/3.11"
    assert record.extra == {}


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        _line("b", "k").replace("[26/Nov/2026:10:15:00 +0000]", "[yesterday]"),
        _line("b", "k").replace(" 200 ", " OK "),
        _line("b", "k").replace(' "GET /b/k HTTP/1.1"', ' "GET /b/k HTTP/1.1'),  # unclosed
        " ".join(_line("b", "k").split(" ")[:12]),  # cut short
    ],
)
def test_malformed_lines_raise_and_are_counted_by_the_log_parser(line: str) -> None:
    with pytest.raises(services.MalformedLine):
        services.s3_log_line_parse(line)
    parsed = services.s3_log_parse("\n".join([DOCUMENTED, line, "", _line("b", "k")]))
    assert (parsed.lines, parsed.malformed, parsed.malformed_lines) == (3, 1, [2])
    assert [n for n, _ in parsed.records] == [1, 4]


@pytest.fixture
def logs(world: World, org_root: Path) -> Any:
    """A log bucket (a local directory here) holding logs of the organization's S3 bucket."""
    tmp_path = org_root
    system = Actor.system(world.org)
    log_location = inventory.location_create(
        actor=system,
        name="Log bucket",
        kind="local",
        provider="filesystem",
        prefix=str(tmp_path / "logs"),
    )
    store = LocalObjectStore(str(tmp_path / "logs"), create=True)
    source = services.storage_log_source_create(
        actor=system, location=log_location, prefix="s3-access/"
    )
    return store, source


def test_import_ties_lines_to_datasets_and_adds_nothing_the_second_time(
    world: World, logs: Any
) -> None:
    store, source = logs
    bucket = world.location.bucket  # the shared S3 bucket the datasets live in
    repo = repository_base(world.location, world.dataset_b)
    primary = f"{world.location.prefix}/{world.dataset.path}"
    store.put(
        "s3-access/2026-11-26-10-15-00-AAAA",
        "\n".join(
            [
                _line(bucket, f"{primary}/train.csv"),
                _line(bucket, f"{repo}/chunks/abc", requester="-"),
                _line(bucket, "unrelated/key"),
                _line("someone-elses-bucket", f"{primary}/train.csv"),
                "malformed line",
                DOCUMENTED,
            ]
        ).encode(),
    )
    store.put("s3-access/2026-11-26-11-00-00-BBBB", _line(bucket, f"{primary}/b.csv").encode())
    report = services.storage_logs_ingest(source)
    assert (report.objects, report.lines, report.events) == (2, 7, 3)
    assert (report.malformed, report.unmatched) == (1, 3)
    events = list(AccessEvent.objects.filter(action="storage_access").order_by("seq"))
    assert [(e.dataset_id, e.actor_label) for e in events] == [
        (world.dataset.pk, "storage:arn:aws:iam::123456789012:user/eve"),
        (world.dataset_b.pk, "storage:anonymous"),
        (world.dataset.pk, "storage:arn:aws:iam::123456789012:user/eve"),
    ]
    first = events[0]
    assert first.actor_kind == "storage"
    assert first.client_id == world.client.pk
    assert first.source_ip == "198.51.100.7"
    assert first.occurred_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert first.details["touched"] == "primary"
    assert events[1].details["touched"] == "backup repository"
    assert first.source_line == 1
    # Again: finished objects are skipped...
    again = services.storage_logs_ingest(source)
    assert (again.objects, again.skipped_objects, again.events) == (0, 2, 0)
    # ...and even when the bookkeeping is lost, each (object, line) becomes one event only.
    StorageLogObject.objects.all().delete()
    lost = services.storage_logs_ingest(source)
    assert (lost.objects, lost.events) == (2, 0)
    assert AccessEvent.objects.filter(action="storage_access").count() == 3
    assert services.access_log_verify(world.org).ok


def test_ingest_command_registers_a_source_and_imports(
    world: World, org_root: Path, capsys: Any
) -> None:
    from django.core.management import call_command

    tmp_path = org_root
    location = inventory.location_create(
        actor=Actor.system(world.org),
        name="Logs",
        kind="local",
        provider="filesystem",
        prefix=str(tmp_path / "l"),
    )
    store = LocalObjectStore(str(tmp_path / "l"), create=True)
    store.put("logs/one", _line(world.location.bucket, f"data/{world.dataset.path}/x").encode())
    call_command("ingest_storage_logs", "--location", str(location.public_id), "--prefix", "logs")
    assert "1 event(s)" in capsys.readouterr().out
