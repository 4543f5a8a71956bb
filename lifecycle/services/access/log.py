"""The access log: the canonical event, and append (serialized per organization); `verify`
walks the chain.

Recording goes through the outbox (`outbox`): `access_event_record` writes a pending row
in the caller's transaction and a worker drains it into the chain. `access_events_append` is
the one way into a chain: it locks the organization's chain head, links each event to the one
before it (sequence number and hash) and moves the head, in one transaction — concurrent
appenders queue on the lock and the chain never forks (the database also refuses a second
event with the same sequence number).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.models import ApiToken, Client, Dataset, Organization
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor
from lifecycle.models import AccessAction, AccessChainHead, AccessEvent, ActorKind

GENESIS = "0" * 64
HASH_VERSION = 1
# Appends of one batch are split into transactions of this many events, so an import of a
# large log never holds the organization's chain lock for long.
APPEND_BATCH = 500


# --- the canonical form ---

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _ref(value: Any) -> str | None:
    return str(value) if value is not None else None


def canonical_event(
    *,
    organization_ref: str,
    public_id: Any,
    seq: int,
    occurred_at: datetime,
    action: str,
    actor_kind: str,
    actor_label: str,
    actor_token_ref: Any,
    client_ref: Any,
    dataset_ref: Any,
    snapshot_ref: Any,
    source_ip: str,
    user_agent: str,
    details: Any,
    source_object: str,
    source_line: int | None,
    prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers: sorted-key, compact JSON of everything it says."""
    body = {
        "v": HASH_VERSION,
        "organization": organization_ref,
        "id": str(public_id),
        "seq": seq,
        "occurred_at": _iso(occurred_at),
        "action": action,
        "actor_kind": actor_kind,
        "actor": actor_label,
        "actor_token": _ref(actor_token_ref),
        "client": _ref(client_ref),
        "dataset": _ref(dataset_ref),
        "snapshot": _ref(snapshot_ref),
        "source_ip": source_ip,
        "user_agent": user_agent,
        "details": details,
        "source_object": source_object,
        "source_line": source_line,
        "prev_hash": prev_hash,
    }
    return _CANONICAL.encode(body).encode()


def event_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def _json_value(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details as plain JSON (what the database gives back), so the hash survives a round trip."""
    loaded: dict[str, Any] = json.loads(
        json.dumps(dict(details or {}), allow_nan=False, default=str)
    )
    return loaded


# --- recording ---


def access_event_payload(
    *,
    organization: Organization,
    action: str,
    actor: Actor | None = None,
    user: Any = None,
    actor_kind: str | None = None,
    actor_label: str | None = None,
    client: Client | None = None,
    dataset: Dataset | None = None,
    snapshot_ref: Any = None,
    origin: RequestOrigin = NO_ORIGIN,
    details: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
    source_object: str = "",
    source_line: int | None = None,
) -> dict[str, Any]:
    """The whole event as JSON values: what the worker appends. Who acted is taken from the
    actor (user or token; system when None), unless `actor_kind`/`actor_label` say otherwise."""
    if action not in AccessAction.values:
        raise ValueError(f"unknown access action {action!r}")
    token_ref = None
    if actor is not None:
        user = actor.user if user is None else user
        if actor.token_id is not None:
            token_ref = (
                ApiToken.objects.filter(pk=actor.token_id)
                .values_list("public_id", flat=True)
                .first()
            )
    if actor_kind is None:
        if token_ref is not None:
            actor_kind = ActorKind.API_TOKEN
        elif user is not None:
            actor_kind = ActorKind.USER
        else:
            actor_kind = ActorKind.SYSTEM
    if actor_label is None:
        actor_label = user.get_username() if user is not None else "system"
    if client is None and dataset is not None:
        client = dataset.client
    return {
        "public_id": str(uuid.uuid4()),
        "organization_id": organization.pk,
        "organization_ref": str(organization.public_id),
        "occurred_at": _iso(occurred_at or timezone.now()),
        "action": action,
        "actor_kind": actor_kind,
        "actor_label": actor_label[:300],
        "actor_user_id": user.pk if user is not None else None,
        "actor_token_ref": _ref(token_ref),
        "client_id": client.pk if client is not None else None,
        "client_ref": _ref(client.public_id) if client is not None else None,
        "dataset_id": dataset.pk if dataset is not None else None,
        "dataset_ref": _ref(dataset.public_id) if dataset is not None else None,
        "snapshot_ref": _ref(snapshot_ref),
        "source_ip": origin.source_ip or "",
        "user_agent": origin.user_agent[:500],
        "details": _json_value(details),
        "source_object": source_object,
        "source_line": source_line,
    }


# --- appending (the worker) ---


def chain_head_lock(organization_id: int) -> AccessChainHead:
    """The organization's chain head, locked until the transaction ends (created if absent):
    whoever holds it is the organization's only appender."""
    head = (
        AccessChainHead.objects.select_for_update().filter(organization_id=organization_id).first()
    )
    if head is None:
        # The first event of an organization: a racing creator makes get_or_create re-read.
        AccessChainHead.objects.get_or_create(organization_id=organization_id)
        head = AccessChainHead.objects.select_for_update().get(organization_id=organization_id)
    return head


def _already_there(
    organization_id: int, payloads: Sequence[Mapping[str, Any]]
) -> tuple[set[str], set[tuple[str, int | None]]]:
    """Public ids and (log object, line) pairs of these payloads the chain already holds."""
    seen = {
        str(pk)
        for pk in AccessEvent.objects.filter(
            public_id__in=[p["public_id"] for p in payloads]
        ).values_list("public_id", flat=True)
    }
    objects = {p["source_object"] for p in payloads if p.get("source_object")}
    seen_lines: set[tuple[str, int | None]] = set()
    if objects:
        seen_lines = set(
            AccessEvent.objects.filter(
                organization_id=organization_id, source_object__in=objects
            ).values_list("source_object", "source_line")
        )
    return seen, seen_lines


def _link(
    organization_id: int,
    head: AccessChainHead,
    payloads: Sequence[Mapping[str, Any]],
    seen: set[str],
    seen_lines: set[tuple[str, int | None]],
) -> tuple[list[AccessEvent], int, str]:
    """Chain the payloads not seen yet after `head`; returns the rows and the new head."""
    rows = []
    seq, prev = head.seq, head.hash or GENESIS
    for payload in payloads:
        source_object = payload.get("source_object") or ""
        line = (source_object, payload.get("source_line"))
        if payload["public_id"] in seen or (source_object and line in seen_lines):
            continue
        seen.add(payload["public_id"])
        if source_object:
            seen_lines.add(line)
        occurred_at = datetime.fromisoformat(payload["occurred_at"])
        seq += 1
        canonical = canonical_event(
            organization_ref=payload["organization_ref"],
            public_id=payload["public_id"],
            seq=seq,
            occurred_at=occurred_at,
            action=payload["action"],
            actor_kind=payload["actor_kind"],
            actor_label=payload["actor_label"],
            actor_token_ref=payload["actor_token_ref"],
            client_ref=payload["client_ref"],
            dataset_ref=payload["dataset_ref"],
            snapshot_ref=payload["snapshot_ref"],
            source_ip=payload["source_ip"],
            user_agent=payload["user_agent"],
            details=payload["details"],
            source_object=source_object,
            source_line=payload.get("source_line"),
            prev_hash=prev,
        )
        digest = event_hash(prev, canonical)
        rows.append(
            AccessEvent(
                public_id=payload["public_id"],
                organization_id=organization_id,
                seq=seq,
                occurred_at=occurred_at,
                action=payload["action"],
                actor_kind=payload["actor_kind"],
                actor_label=payload["actor_label"],
                actor_user_id=payload["actor_user_id"],
                actor_token_ref=payload["actor_token_ref"],
                client_id=payload["client_id"],
                client_ref=payload["client_ref"],
                dataset_id=payload["dataset_id"],
                dataset_ref=payload["dataset_ref"],
                snapshot_ref=payload["snapshot_ref"],
                source_ip=payload["source_ip"],
                user_agent=payload["user_agent"],
                details=payload["details"],
                source_object=source_object,
                source_line=payload.get("source_line"),
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return rows, seq, prev


def chain_extend(head: AccessChainHead, payloads: Sequence[Mapping[str, Any]]) -> list[AccessEvent]:
    """Append the payloads after `head`, which the caller's transaction has locked
    (`chain_head_lock`); payloads already in the chain are skipped."""
    organization_id = head.organization_id
    # Fast path: assume nothing is there yet and let the unique constraints say otherwise
    # (a redelivered task, a re-imported log line); then look and leave those out.
    rows, seq, digest = _link(organization_id, head, payloads, set(), set())
    try:
        with transaction.atomic():
            AccessEvent.objects.bulk_create(rows)
    except IntegrityError:
        seen, seen_lines = _already_there(organization_id, payloads)
        rows, seq, digest = _link(organization_id, head, payloads, seen, seen_lines)
        AccessEvent.objects.bulk_create(rows)
    if rows:
        AccessChainHead.objects.filter(pk=head.pk).update(
            seq=seq, hash=digest, updated_at=timezone.now()
        )
    return rows


def access_events_append(payloads: Iterable[Mapping[str, Any]]) -> list[AccessEvent]:
    """Append events to their organizations' chains, in order; already present ones are skipped.

    Serialized per organization by the chain head's row lock (PostgreSQL), or by SQLite's
    single writer (transactions begin IMMEDIATE) — the same code path on both.
    """
    by_org: dict[int, list[Mapping[str, Any]]] = {}
    for payload in payloads:
        by_org.setdefault(int(payload["organization_id"]), []).append(payload)
    appended: list[AccessEvent] = []
    for organization_id, batch in by_org.items():
        for start in range(0, len(batch), APPEND_BATCH):
            with transaction.atomic():
                head = chain_head_lock(organization_id)
                appended += chain_extend(head, batch[start : start + APPEND_BATCH])
    return appended
