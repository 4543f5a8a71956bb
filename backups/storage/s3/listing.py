"""Listing and deleting in `S3ObjectStore`: current objects (with their class), every version
and delete marker, and batched multi-object deletes; plus the Object Lock retention extension a
locked target's backups ask for."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from backups.storage.base import (
    DELETE_BATCH_SIZE,
    NULL_VERSION,
    DeleteError,
    DeleteResult,
    ObjectInfo,
    ObjectVersion,
)
from backups.storage.errors import StorageError
from backups.storage.s3.parts import StoreParts
from backups.storage.s3.translate import NOT_FOUND

if TYPE_CHECKING:
    pass


class ListingMixin(StoreParts):
    """The listing, deletion and retention calls of `S3ObjectStore`."""

    def extend_retention(
        self, keys: Iterable[str], until: datetime, mode: str, *, threads: int = 8
    ) -> int:
        """Move the Object Lock retention of each key's current version to `until`; returns how
        many were extended. A key already retained longer (written under a longer period) is
        left as it is: S3 refuses to shorten a lock, and that refusal is no failure."""

        def extend(key: str) -> bool:
            try:
                with self.translate_errors("extend retention", key):
                    self._client.put_object_retention(
                        Bucket=self.bucket,
                        Key=key,
                        Retention={"Mode": cast(Any, mode), "RetainUntilDate": until},
                    )
            except StorageError:
                with self.translate_errors("head", key):
                    head = self._client.head_object(Bucket=self.bucket, Key=key)
                current = head.get("ObjectLockRetainUntilDate")
                if isinstance(current, datetime) and current >= until:
                    return False
                raise
            return True

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return sum(pool.map(extend, keys))

    def list(
        self, prefix: str = "", *, skipped: builtins.list[str] | None = None
    ) -> Iterator[ObjectInfo]:
        # `skipped` stays untouched: every S3 key is an object, nothing is declined.
        paginator = self._client.get_paginator("list_objects_v2")
        with self.translate_errors("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=item["Size"],
                        mtime=item["LastModified"],
                        etag=item["ETag"].strip('"'),
                        storage_class=str(item.get("StorageClass") or "STANDARD"),
                    )

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        paginator = self._client.get_paginator("list_object_versions")
        with self.translate_errors("list versions", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found = [
                    ObjectVersion(
                        key=item["Key"],
                        version_id=item.get("VersionId") or NULL_VERSION,
                        is_delete_marker=False,
                        size=item.get("Size", 0),
                        last_modified=item["LastModified"],
                    )
                    for item in page.get("Versions", [])
                ]
                found.extend(
                    ObjectVersion(
                        key=item["Key"],
                        version_id=item.get("VersionId") or NULL_VERSION,
                        is_delete_marker=True,
                        size=0,
                        last_modified=item["LastModified"],
                    )
                    for item in page.get("DeleteMarkers", [])
                )
                found.sort(key=lambda v: (v.key, -v.last_modified.timestamp()))
                yield from found

    def delete_versions(self, items: Iterable[tuple[str, str | None]]) -> DeleteResult:
        result = DeleteResult()
        batch: list[tuple[str, str | None]] = []
        for item in items:
            batch.append(item)
            if len(batch) == DELETE_BATCH_SIZE:
                result.extend(self._delete_batch(batch))
                batch = []
        if batch:
            result.extend(self._delete_batch(batch))
        return result

    def _delete_batch(self, batch: builtins.list[tuple[str, str | None]]) -> DeleteResult:
        objects: list[dict[str, str]] = []
        for key, version_id in batch:
            entry = {"Key": key}
            if version_id is not None:
                entry["VersionId"] = version_id
            objects.append(entry)
        with self.translate_errors("delete objects"):
            resp = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": cast(Any, objects), "Quiet": False}
            )
        result = DeleteResult()
        for item in resp.get("Deleted", []):
            result.deleted.append((item["Key"], item.get("VersionId")))
        for err in resp.get("Errors", []):
            code = err.get("Code", "Unknown")
            if code in NOT_FOUND:
                # Already gone is what a resumed deletion expects.
                result.deleted.append((err["Key"], err.get("VersionId")))
            else:
                result.errors.append(
                    DeleteError(
                        err["Key"], err.get("VersionId"), code, self._clean(err.get("Message", ""))
                    )
                )
        return result
