"""The access log: the hash chain (log), recording through the transactional outbox
(outbox), walking the chain (verify), and the chain as evidence reports it (checkpoint)."""

from lifecycle.services.access.checkpoint import access_chain_status
from lifecycle.services.access.log import (
    GENESIS,
    access_event_payload,
    access_events_append,
    canonical_event,
    event_hash,
)
from lifecycle.services.access.outbox import (
    access_event_record,
    access_events_drain,
    access_events_drain_all,
)
from lifecycle.services.access.verify import ChainReport, access_log_verify

__all__ = [
    "GENESIS",
    "ChainReport",
    "access_chain_status",
    "access_event_payload",
    "access_event_record",
    "access_events_append",
    "access_events_drain",
    "access_events_drain_all",
    "access_log_verify",
    "canonical_event",
    "event_hash",
]
