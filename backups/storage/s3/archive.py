"""Objects in S3's archive classes: reading where a retrieval stands, and asking for one.

An object in GLACIER or DEEP_ARCHIVE answers every GET with InvalidObjectState until a
`RestoreObject` has made a temporary readable copy (hours, by the tier asked for). HEAD tells
the class (absent for STANDARD) and, once asked, `Restore: ongoing-request="true"` while the
copy is made, then `ongoing-request="false", expiry-date="…"` while it lasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import botocore.exceptions

from backups.storage.base import ArchiveState
from backups.storage.errors import ObjectNotFound
from backups.storage.s3.parts import StoreParts

if TYPE_CHECKING:
    pass

RetrievalTier = Literal["Standard", "Bulk", "Expedited"]
RETRIEVAL_TIERS: tuple[RetrievalTier, ...] = ("Standard", "Bulk", "Expedited")
# Answers to RestoreObject that mean "nothing to do": a retrieval is already under way, or the
# object is not archived after all (a lifecycle rule moved it back, or it never was).
_ALREADY = {"RestoreAlreadyInProgress", "ObjectAlreadyInActiveTierError"}


def restore_status(header: str | None) -> Literal["none", "ongoing", "done"]:
    """S3's `Restore` header as a state: absent (never asked, or the copy expired), ongoing or
    done."""
    if not header:
        return "none"
    compact = header.replace(" ", "").lower()
    if 'ongoing-request="true"' in compact:
        return "ongoing"
    if 'ongoing-request="false"' in compact:
        return "done"
    return "none"


class ArchiveMixin(StoreParts):
    """The archive calls of `S3ObjectStore`."""

    def archive_state(self, key: str) -> ArchiveState | None:
        """The object's class and retrieval state from one HEAD; None when it does not exist."""
        try:
            with self.translate_errors("head", key):
                head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return None
        return ArchiveState(
            key=key,
            storage_class=str(head.get("StorageClass") or "STANDARD"),
            restore=restore_status(head.get("Restore")),
        )

    def archive_restore(self, key: str, *, days: int, tier: RetrievalTier) -> None:
        """Ask for a readable copy of an archived object for `days` days, retrieved at `tier`.
        A retrieval already under way, or an object that is not archived, is no failure."""
        if days < 1:
            raise ValueError("a retrieved copy lasts at least one day")
        if tier not in RETRIEVAL_TIERS:
            raise ValueError(f"unknown retrieval tier {tier!r}")
        request: dict[str, Any] = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
        with self.translate_errors("restore from archive", key):
            try:
                self._client.restore_object(
                    Bucket=self.bucket, Key=key, RestoreRequest=cast(Any, request)
                )
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) not in _ALREADY:
                    raise
