"""The access chain as evidence reports it: verified from the last link known good.

Walking an organization's whole chain costs about 20 µs per event; an evidence read cannot pay
that for every event ever logged. So the chain is walked whole once a day (and on the first
read), and every other read verifies only from a checkpoint — the last link found good, whose
hash must not have moved (a chain rewritten before it no longer reaches it) — to the head,
with the same rules as `access_log_verify`. An event altered before the checkpoint without
rewriting the links after it is caught by the next whole walk, within a day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from lifecycle.models import AccessChainCheckpoint, AccessChainHead, AccessEvent
from lifecycle.services.access.log import GENESIS
from lifecycle.services.access.verify import CHAIN_FIELDS, access_log_verify, stored_row_intact

# The whole chain is walked again when the last whole walk is older than this.
FULL_WALK_EVERY = timedelta(days=1)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _walk_from(organization: Any, seq: int, known_hash: str) -> tuple[int, str, int | None, str]:
    """Verify the chain from the event `seq` known good (0: from the start): that event still
    carries `known_hash`, and every later one links to it and matches its contents (the rules
    of `access_log_verify`). Returns (last seq, last hash, first broken seq, reason)."""
    org_ref = str(organization.public_id)
    rows = (
        AccessEvent.objects.filter(organization=organization, seq__gte=max(seq, 1))
        .order_by("seq")
        .values_list(*CHAIN_FIELDS)
        .iterator(chunk_size=2000)
    )
    expected, prev = (seq, known_hash) if seq else (1, GENESIS)
    for row in rows:
        number, prev_hash, digest = row[0], row[-2], row[-1]
        if number != expected:
            return expected - 1, prev, expected, f"event #{expected} is missing (deleted)"
        if number == seq:  # the checkpoint itself: rewritten if its hash moved
            if digest != known_hash:
                return 0, "", seq, "the chain was rewritten after it was last verified"
            expected += 1
            continue
        if prev_hash != prev:
            return number - 1, prev, number, "does not link to the event before it (reordered)"
        if not stored_row_intact(org_ref, row):
            return number - 1, prev, number, "its contents were altered (hash mismatch)"
        prev, expected = digest, number + 1
    if seq and expected == seq:
        return 0, "", seq, f"event #{seq} is missing (deleted)"
    return expected - 1, prev, None, ""


def access_chain_status(organization: Any, *, now: datetime) -> dict[str, Any]:
    """The organization's access chain, verified for an evidence read in a fixed number of
    queries: from the last link known good (whose hash must not have moved), or the whole
    chain when it was last walked more than FULL_WALK_EVERY ago. Moves the checkpoint on."""
    checkpoint = AccessChainCheckpoint.objects.filter(organization=organization).first()
    head = AccessChainHead.objects.filter(organization=organization).first()
    head_seq = head.seq if head is not None else 0
    whole = checkpoint is None or now - checkpoint.walked_at > FULL_WALK_EVERY
    if whole:
        report = access_log_verify(organization)
        if not report.ok:
            return {
                "ok": False,
                "events": head_seq,
                "verified_from": 1,
                "walked_at": _iso(checkpoint.walked_at) if checkpoint else None,
                "broken_at": report.broken_at,
                "reason": report.reason,
            }
        start, last_seq = 1, report.events
        last_hash = (
            AccessEvent.objects.filter(organization=organization, seq=last_seq)
            .values_list("hash", flat=True)
            .first()
            or ""
        )
        walked_at = now
    else:
        assert checkpoint is not None  # noqa: S101  # narrowed by `whole`
        start, walked_at = max(checkpoint.seq, 1), checkpoint.walked_at
        last_seq, last_hash, broken_at, reason = _walk_from(
            organization, checkpoint.seq, checkpoint.hash
        )
        # Longer than the head read before: appended meanwhile, and verified too. Shorter:
        # events were removed from the end.
        if broken_at is None and last_seq < head_seq:
            broken_at, reason = last_seq + 1, "events were removed from the end of the chain"
        if broken_at is not None:
            return {
                "ok": False,
                "events": head_seq,
                "verified_from": start,
                "walked_at": _iso(walked_at),
                "broken_at": broken_at,
                "reason": reason,
            }
    _checkpoint_move(organization, last_seq, last_hash, walked_at=walked_at, now=now)
    return {
        "ok": True,
        "events": max(head_seq, last_seq),
        "verified_from": start,
        "walked_at": _iso(walked_at),
        "broken_at": None,
        "reason": "",
    }


def _checkpoint_move(
    organization: Any, seq: int, digest: str, *, walked_at: datetime, now: datetime
) -> None:
    values = {"seq": seq, "hash": digest, "walked_at": walked_at, "checked_at": now}
    updated = AccessChainCheckpoint.objects.filter(organization=organization).update(**values)
    if not updated:
        try:
            with transaction.atomic():
                AccessChainCheckpoint.objects.create(organization=organization, **values)
        except IntegrityError:
            pass  # a concurrent read created it: either is a good checkpoint
