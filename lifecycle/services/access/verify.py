"""Verifying the access log: walk an organization's chain from its first event and report the
first link that fails (a missing, reordered or altered event, or a head past the end)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clients.models import Organization
from lifecycle.models import AccessChainHead, AccessEvent
from lifecycle.services.access.log import GENESIS, canonical_event, event_hash


@dataclass(frozen=True)
class ChainReport:
    """The result of walking one organization's chain; `broken_at` is the first bad link."""

    organization: str
    ok: bool
    events: int
    head_seq: int
    broken_at: int | None = None
    event: str | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.organization}: OK, {self.events} events, chain intact"
        where = f"#{self.broken_at}" + (f" ({self.event})" if self.event else "")
        return f"{self.organization}: BROKEN at {where}: {self.reason}"


# The stored columns a chain walk reads (verification and checkpoints alike).
CHAIN_FIELDS = (
    "seq",
    "public_id",
    "occurred_at",
    "action",
    "actor_kind",
    "actor_label",
    "actor_token_ref",
    "client_ref",
    "dataset_ref",
    "snapshot_ref",
    "source_ip",
    "user_agent",
    "details",
    "source_object",
    "source_line",
    "prev_hash",
    "hash",
)


def stored_row_intact(org_ref: str, row: Sequence[Any]) -> bool:
    """Whether a stored event (a row of `_rows`' columns) still hashes to its recorded hash."""
    (seq, public_id, occurred_at, action, kind, label, token, client, dataset, snapshot,
     ip, agent, details, source_object, source_line, prev_hash, digest) = row  # fmt: skip
    canonical = canonical_event(
        organization_ref=org_ref,
        public_id=public_id,
        seq=seq,
        occurred_at=occurred_at,
        action=action,
        actor_kind=kind,
        actor_label=label,
        actor_token_ref=token,
        client_ref=client,
        dataset_ref=dataset,
        snapshot_ref=snapshot,
        source_ip=ip,
        user_agent=agent,
        details=details,
        source_object=source_object,
        source_line=source_line,
        prev_hash=prev_hash,
    )
    return bool(event_hash(prev_hash, canonical) == digest)


def _rows(organization: Organization) -> Iterator[tuple[Any, ...]]:
    return (
        AccessEvent.objects.filter(organization=organization)
        .order_by("seq")
        .values_list(*CHAIN_FIELDS)
        .iterator(chunk_size=5000)
    )


def access_log_verify(organization: Organization) -> ChainReport:
    """Walk the chain from the first event: every sequence number present once and in order,
    every event linked to its predecessor's hash, every hash matching the event's contents,
    and the head pointing at the last event. Reports the first link that fails."""
    org_ref = str(organization.public_id)
    head = AccessChainHead.objects.filter(organization=organization).first()
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, "")
    expected, prev, count = 1, GENESIS, 0

    def broken(seq: int, event: Any, reason: str) -> ChainReport:
        ref = str(event) if event is not None else None
        return ChainReport(organization.slug, False, count, head_seq, seq, ref, reason)

    for row in _rows(organization):
        seq, public_id, prev_hash, digest = row[0], row[1], row[-2], row[-1]
        if seq != expected:
            if seq > expected:
                gap = f"#{expected}" if seq == expected + 1 else f"#{expected} to #{seq - 1}"
                return broken(expected, None, f"event {gap} is missing (deleted)")
            return broken(seq, public_id, "sequence number repeats or goes backwards")
        if prev_hash != prev:
            return broken(seq, public_id, "does not link to the event before it (reordered)")
        if not stored_row_intact(org_ref, row):
            return broken(seq, public_id, "its contents were altered (hash mismatch)")
        prev, expected, count = digest, expected + 1, count + 1
    if count != head_seq or (count and prev != head_hash):
        return broken(
            count + 1,
            None,
            f"the chain ends at #{count} but its head is at #{head_seq} "
            "(events removed from the end)",
        )
    return ChainReport(organization.slug, True, count, head_seq)
