"""Every write and side effect of the lifecycle app. Split by sub-domain; public names here."""

from lifecycle.services.access_log import (
    GENESIS,
    ChainReport,
    access_event_payload,
    access_events_append,
    access_log_verify,
    canonical_event,
    event_hash,
)
from lifecycle.services.access_outbox import (
    access_event_record,
    access_events_drain,
    access_events_drain_all,
)
from lifecycle.services.storage_logs import (
    DatasetPrefixes,
    IngestReport,
    MalformedLine,
    ParsedLog,
    S3LogRecord,
    s3_log_line_parse,
    s3_log_parse,
    storage_log_source_create,
    storage_logs_ingest,
    storage_logs_ingest_all,
)

__all__ = [
    "GENESIS",
    "ChainReport",
    "DatasetPrefixes",
    "IngestReport",
    "MalformedLine",
    "ParsedLog",
    "S3LogRecord",
    "access_event_payload",
    "access_event_record",
    "access_events_append",
    "access_events_drain",
    "access_events_drain_all",
    "access_log_verify",
    "canonical_event",
    "event_hash",
    "s3_log_line_parse",
    "s3_log_parse",
    "storage_log_source_create",
    "storage_logs_ingest",
    "storage_logs_ingest_all",
]
