"""Storage-side access: S3 server access logs, parsed and appended to the access log.

The format is the one AWS documents for server access logging: one request per line, fields
separated by spaces, the time in brackets, the request line, referrer and user agent in double
quotes, '-' for an empty value, and new fields only ever added at the end. A line that does not
fit is counted as malformed and skipped; it never stops the import.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

from django.db import transaction
from django.utils import timezone

from backups.services import location_key, repository_base, store_for_location
from backups.storage import StorageError
from clients.models import Dataset, LocationKind, StorageLocation
from kernel.exceptions import ValidationFailed
from kernel.http import RequestOrigin
from kernel.tenancy import Actor
from lifecycle.models import AccessAction, ActorKind, StorageLogObject, StorageLogSource
from lifecycle.services.access.log import access_event_payload, access_events_append

logger = logging.getLogger(__name__)

# A quoted field (with backslash escapes), a bracketed time, or a run of non-spaces.
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|\[([^\]]*)\]|(\S+)')
# Bucket owner … user agent: the fields every log line has carried since logging began.
REQUIRED_FIELDS = 17
FIELDS = (
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
)


@dataclass(frozen=True)
class S3LogRecord:
    """One parsed request. Optional fields are None where the log says '-'."""

    bucket_owner: str
    bucket: str
    time: datetime
    remote_ip: str | None
    requester: str | None
    request_id: str | None
    operation: str
    key: str | None
    request_uri: str | None
    http_status: int | None
    error_code: str | None
    bytes_sent: int | None
    object_size: int | None
    total_time: int | None
    turn_around_time: int | None
    referer: str | None
    user_agent: str | None
    extra: dict[str, str | None] = field(default_factory=dict)


@dataclass
class ParsedLog:
    records: list[tuple[int, S3LogRecord]] = field(default_factory=list)  # (line number, record)
    lines: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)


class MalformedLine(ValueError):
    pass


def _tokens(line: str) -> list[str | None]:
    values: list[str | None] = []
    position = 0
    for match in _TOKEN.finditer(line):
        if line[position : match.start()].strip():
            raise MalformedLine("unexpected characters between fields")
        position = match.end()
        quoted, bracketed, bare = match.groups()
        if quoted is not None:
            value: str | None = quoted.replace('\\"', '"').replace("\\\\", "\\")
        elif bracketed is not None:
            value = bracketed
        else:
            value = bare
        values.append(None if value == "-" else value)
    return values


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise MalformedLine(f"expected a number, got {value[:20]!r}")
    return int(value)


def s3_log_line_parse(line: str) -> S3LogRecord:
    """One line of an S3 server access log; raises MalformedLine if it does not fit."""
    values = _tokens(line)
    if len(values) < REQUIRED_FIELDS:
        raise MalformedLine(f"{len(values)} fields, at least {REQUIRED_FIELDS} expected")
    named = dict(zip(FIELDS, values, strict=False))
    if not named["bucket"] or not named["operation"] or not named["time"]:
        raise MalformedLine("no bucket, operation or time")
    try:
        time = datetime.strptime(named["time"], "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        raise MalformedLine("unreadable time") from None
    key = named["key"]
    return S3LogRecord(
        bucket_owner=named["bucket_owner"] or "",
        bucket=named["bucket"],
        time=time,
        remote_ip=named["remote_ip"],
        requester=named["requester"],
        request_id=named["request_id"],
        operation=named["operation"],
        key=unquote(key) if key is not None else None,
        request_uri=named["request_uri"],
        http_status=_int(named["http_status"]),
        error_code=named["error_code"],
        bytes_sent=_int(named["bytes_sent"]),
        object_size=_int(named["object_size"]),
        total_time=_int(named["total_time"]),
        turn_around_time=_int(named["turn_around_time"]),
        referer=named["referer"],
        user_agent=named["user_agent"],
        extra={name: named.get(name) for name in FIELDS[REQUIRED_FIELDS:] if name in named},
    )


def s3_log_parse(text: str) -> ParsedLog:
    """Every line of a log object; blank lines are ignored, malformed ones counted."""
    parsed = ParsedLog()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parsed.lines += 1
        try:
            parsed.records.append((number, s3_log_line_parse(line)))
        except MalformedLine:
            parsed.malformed += 1
            parsed.malformed_lines.append(number)
    return parsed


# --- which dataset a key belongs to ---


@dataclass(frozen=True)
class _Prefix:
    bucket: str
    prefix: str
    dataset: Dataset
    role: str


class DatasetPrefixes:
    """Every backup repository and primary copy of an organization's datasets on S3 locations,
    longest prefix first, to tie a logged key to the dataset it touched."""

    def __init__(self, locations: list[StorageLocation], datasets: list[Dataset]) -> None:
        prefixes: list[_Prefix] = []
        for location in locations:
            if location.kind != LocationKind.S3:
                continue
            for dataset in datasets:
                base = repository_base(location, dataset)
                prefixes.append(_Prefix(location.bucket, base + "/", dataset, "backup repository"))
                if dataset.location_id == location.pk:
                    primary = location_key(location, dataset.path)
                    prefixes.append(
                        _Prefix(
                            location.bucket, primary + "/" if primary else "", dataset, "primary"
                        )
                    )
        self.prefixes = sorted(prefixes, key=lambda p: len(p.prefix), reverse=True)

    def match(self, bucket: str, key: str | None) -> _Prefix | None:
        if not key:
            return None
        for candidate in self.prefixes:
            if candidate.bucket == bucket and (
                key.startswith(candidate.prefix) or key + "/" == candidate.prefix
            ):
                return candidate
        return None


def _prefixes_for(source: StorageLogSource) -> DatasetPrefixes:
    org = source.organization_id
    locations = list(StorageLocation.objects.filter(organization_id=org))
    datasets = list(
        Dataset.objects.filter(organization_id=org).select_related("organization", "client")
    )
    return DatasetPrefixes(locations, datasets)


# --- ingesting ---


@dataclass
class IngestReport:
    objects: int = 0
    skipped_objects: int = 0
    lines: int = 0
    events: int = 0
    unmatched: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)


@transaction.atomic
def storage_log_source_create(
    *, actor: Actor, location: StorageLocation, prefix: str
) -> StorageLogSource:
    """Name where a bucket's access logs are delivered. Owners and admins only."""
    actor.require_admin("configure storage access-log ingestion")
    if location.organization_id != actor.organization_id:
        raise ValidationFailed("Unknown location.", fields={"location": "No such location."})
    source, _ = StorageLogSource.objects.get_or_create(
        organization=actor.organization, location=location, prefix=prefix.strip("/")
    )
    return source


def _events_of(
    source: StorageLogSource, key: str, parsed: ParsedLog, prefixes: DatasetPrefixes
) -> Iterator[dict[str, object]]:
    for number, record in parsed.records:
        hit = prefixes.match(record.bucket, record.key)
        if hit is None:
            continue
        yield access_event_payload(
            organization=source.organization,
            action=AccessAction.STORAGE_ACCESS,
            actor_kind=ActorKind.STORAGE,
            actor_label=f"storage:{record.requester or 'anonymous'}",
            dataset=hit.dataset,
            origin=RequestOrigin(record.remote_ip, record.user_agent or ""),
            occurred_at=record.time,
            details={
                "bucket": record.bucket,
                "key": record.key,
                "operation": record.operation,
                "http_status": record.http_status,
                "error_code": record.error_code,
                "bytes_sent": record.bytes_sent,
                "request_id": record.request_id,
                "version_id": record.extra.get("version_id"),
                "touched": hit.role,
            },
            source_object=f"{source.location.public_id}/{key}",
            source_line=number,
        )


def storage_logs_ingest(source: StorageLogSource) -> IngestReport:
    """Import every log object under the source's prefix not imported before. Idempotent:
    finished objects are skipped, and each (log object, line) becomes at most one event."""
    report = IngestReport()
    store = store_for_location(source.location)
    done = set(source.log_objects.values_list("key", flat=True))
    prefixes = _prefixes_for(source)
    prefix = location_key(source.location, source.prefix)
    try:
        listing = list(store.list(prefix + "/" if prefix else ""))
    except StorageError as exc:
        report.errors.append(f"listing {prefix!r}: {exc}")
        return report
    for info in listing:
        if info.key in done:
            report.skipped_objects += 1
            continue
        try:
            text = store.get(info.key).decode("utf-8", errors="replace")
        except StorageError as exc:
            report.errors.append(f"{info.key}: {exc}")
            continue
        parsed = s3_log_parse(text)
        payloads = list(_events_of(source, info.key, parsed, prefixes))
        appended = access_events_append(payloads)
        StorageLogObject.objects.get_or_create(
            source=source,
            key=info.key,
            defaults={
                "etag": info.etag[:200],
                "lines": parsed.lines,
                "events": len(appended),
                "malformed": parsed.malformed,
            },
        )
        if parsed.malformed:
            logger.warning(
                "%s: %d malformed line(s) skipped: %s",
                info.key,
                parsed.malformed,
                parsed.malformed_lines[:20],
            )
        report.objects += 1
        report.lines += parsed.lines
        report.malformed += parsed.malformed
        report.events += len(appended)
        report.unmatched += len(parsed.records) - len(payloads)
    StorageLogSource.objects.filter(pk=source.pk).update(last_ingested_at=timezone.now())
    return report


def storage_logs_ingest_all(organization_id: int | None = None) -> dict[str, IngestReport]:
    """Every configured log source (of one organization, or all: the periodic task)."""
    sources = StorageLogSource.objects.unscoped_for_system_task().select_related(
        "organization", "location"
    )
    if organization_id is not None:
        sources = sources.filter(organization_id=organization_id)
    return {str(source): storage_logs_ingest(source) for source in sources}
