"""`ObjectStore` over any S3-compatible service through boto3.

One client per store; boto3 clients are thread-safe, so the engine's worker threads share it and
the connection pool is sized to the thread pool (otherwise threads queue for sockets).

A store that acts for a tenant is given a guarded `connect` (the caller's egress policy): every
socket of its client, the fast GET path's included, is opened by it, and a connection it
refuses (PermissionError) is neither retried nor described beyond "refused".
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

import boto3
import botocore.exceptions
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from backups.storage.base import (
    ObjectInfo,
    Retention,
    read_full,
)
from backups.storage.errors import (
    ObjectNotFound,
    StorageError,
)
from backups.storage.s3.archive import ArchiveMixin
from backups.storage.s3.bodies import MIB, DirectBody, ResumingReader, TranslatingReader
from backups.storage.s3.egress import GuardedConnect, guarded_pool_classes, refusal_not_retried
from backups.storage.s3.listing import ListingMixin
from backups.storage.s3.translate import botocore_errors_translated

# Every write carries a checksum of its body: buckets with Object Lock (a default retention)
# refuse puts without one, and a body damaged on the way is refused rather than stored. CRC32
# costs little next to the upload; only puts carry it (reads are checked by AES-GCM anyway).
PUT_CHECKSUM: Literal["CRC32"] = "CRC32"  # each part's ChecksumCRC32 goes into the completion

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# S3 allows at most 10,000 parts; the part size grows every 1,000 parts so a stream of unknown
# length can still reach several TB.
_MAX_PARTS = 10_000
_PART_GROWTH_EVERY = 1_000


class S3ObjectStore(ArchiveMixin, ListingMixin):
    """A bucket on an S3-compatible endpoint (AWS, MinIO, Ceph, B2, Wasabi, GCS interop).
    Objects in archive classes are read after a retrieval (`ArchiveMixin`)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_pool_connections: int = 16,
        part_size: int = 16 * MIB,
        retry_mode: Literal["standard", "adaptive", "legacy"] = "standard",
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        addressing_style: Literal["auto", "virtual", "path"] = "auto",
        transport_checksums: bool = False,
        connect: GuardedConnect | None = None,
        retention: Retention | None = None,
        cold_storage_class: str | None = None,
    ) -> None:
        if part_size < 5 * MIB:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._part_size = part_size
        self.retention = retention
        self.cold_storage_class = cold_storage_class
        # A session per store: boto3's default session is not safe to share across threads, and
        # the credentials then live only inside botocore, never on this object.
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            region_name=region,
        )
        config = Config(
            max_pool_connections=max_pool_connections,
            # Standard/adaptive modes retry throttling, 5xx and connection resets with jittered
            # backoff; a failure after max_attempts surfaces as one translated error.
            retries={"mode": retry_mode, "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            tcp_keepalive=True,
            s3={"addressing_style": addressing_style},
            # Extra CRC checksums on every request and response halve throughput (aws-chunked
            # bodies, a CRC pass on each side) and add nothing for backups: chunks and manifests
            # are AES-GCM authenticated, restores check each file's sha256, and TLS protects
            # the transport. Checksums S3 requires (e.g. DeleteObjects) are still sent.
            request_checksum_calculation="when_supported"
            if transport_checksums
            else "when_required",
            response_checksum_validation="when_supported"
            if transport_checksums
            else "when_required",
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        if connect is not None:
            self._guard(connect)
        # The fast GET path (see _direct_open) signs with these and sends on the client's pool.
        self._credentials = session.get_credentials()
        self._direct_base: str | None = None
        self._direct_enabled = True
        # Kept only to scrub them from error messages that echo request details.
        self._scrub = [s for s in (access_key_id, secret_access_key, session_token) if s]

    def _guard(self, connect: GuardedConnect) -> None:
        """Open every socket of the client through `connect`: the pool classes of its HTTP
        session (direct and through a proxy: botocore's proxy managers take the session's
        `_pool_classes_by_scheme`), which the fast GET path shares. A botocore without these
        hooks is refused rather than left unguarded. A refused connection is not retried."""
        classes = guarded_pool_classes(connect)
        try:
            session = self._client._endpoint.http_session  # type: ignore[attr-defined]
            manager = session._manager
            if session._pool_classes_by_scheme.keys() != classes.keys() or getattr(
                session, "_proxy_managers", None
            ):
                raise AttributeError("unexpected HTTP session")
            session._pool_classes_by_scheme = classes
            manager.pool_classes_by_scheme = classes
        except AttributeError:
            raise StorageError(
                f"{self.describe()}: this botocore's HTTP session cannot be guarded"
            ) from None
        # Retrying a refusal changes nothing: stop at once (a handler that raises ends the
        # retry decision, and the client call raises the error it was about to retry).
        self._client.meta.events.register_first("needs-retry.s3", refusal_not_retried)

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.describe()})"

    @property
    def client(self) -> S3Client:
        """The boto3 client, for the bucket's settings (posture audits and fixes), which the
        object interface does not cover. Wrap calls in `translate_errors`."""
        return self._client

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"S3 bucket {self.bucket!r} at {where}"

    @contextlib.contextmanager
    def translate_errors(self, operation: str, key: str | None = None) -> Iterator[None]:
        """Re-raise botocore failures as StorageError subclasses with a readable message."""
        target = f"{key!r} in {self.describe()}" if key is not None else self.describe()
        with botocore_errors_translated(operation, target, self._clean):
            yield

    def _clean(self, text: str) -> str:
        for secret in self._scrub:
            text = text.replace(secret, "***")
        return text

    def create_bucket(self, *, versioning: bool = False) -> None:
        """Create the bucket if missing (tests, embedded setups); optionally turn on versioning."""
        with self.translate_errors("create bucket"):
            with contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou):
                self._client.create_bucket(Bucket=self.bucket)
            if versioning:
                self._client.put_bucket_versioning(
                    Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
                )

    def _write_args(self, *, cold: bool, retain: bool) -> dict[str, Any]:
        """What every write of one object sends besides its body: the checksum, the store's
        Object Lock retention (counted from now) and, for cold content, its storage class."""
        args: dict[str, Any] = {"ChecksumAlgorithm": PUT_CHECKSUM}
        if retain and self.retention is not None:
            args["ObjectLockMode"] = self.retention.mode
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=self.retention.days
            )
        if cold and self.cold_storage_class:
            args["StorageClass"] = self.cold_storage_class
        return args

    def put(
        self,
        key: str,
        data: bytes | bytearray | BinaryIO,
        *,
        cold: bool = False,
        retain: bool = True,
    ) -> None:
        args = self._write_args(cold=cold, retain=retain)
        if isinstance(data, bytes | bytearray | memoryview):
            with self.translate_errors("put", key):
                # bytes and bytearray go out as they are: copying multi-MiB chunks costs time.
                # botocore accepts bytearray bodies; its stubs only spell out bytes.
                body = cast(bytes, data.tobytes() if isinstance(data, memoryview) else data)
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body, **args)
            return
        first = read_full(data, self._part_size)
        if len(first) < self._part_size:
            with self.translate_errors("put", key):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=first, **args)
            return
        self._put_multipart(key, first, data, args)

    def _put_multipart(
        self, key: str, first: bytes, stream: BinaryIO, args: dict[str, Any]
    ) -> None:
        with self.translate_errors("start multipart upload", key):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, **args)[
                "UploadId"
            ]
        parts: list[dict[str, Any]] = []
        try:
            part = first
            while part:
                number = len(parts) + 1
                if number > _MAX_PARTS:
                    raise StorageError(f"put of {key!r}: object exceeds the multipart part limit")
                with self.translate_errors("upload part", key):
                    etag = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                        ChecksumAlgorithm=PUT_CHECKSUM,
                    )
                parts.append(
                    {
                        "ETag": etag["ETag"],
                        "PartNumber": number,
                        "ChecksumCRC32": etag["ChecksumCRC32"],
                    }
                )
                growth = 1 + len(parts) // _PART_GROWTH_EVERY
                part = read_full(stream, self._part_size * growth)
            with self.translate_errors("complete multipart upload", key):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": cast(Any, parts)},
                )
        except BaseException:
            # Leaving the upload open would keep billing for invisible parts.
            with contextlib.suppress(botocore.exceptions.BotoCoreError, StorageError):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def get(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        if length == 0:
            return b""
        # Resumed like whole reads: a reset or truncated response asks for the rest of the range.
        # Read into one buffer of the range's size: a restore holds several 16 MiB ranges at
        # once, and joining the pieces a socket returns would hold each one twice.
        body = ResumingReader(self, key, offset, offset + length)
        buffer = bytearray(length)
        view = memoryview(buffer)
        filled = 0
        try:
            while filled < length:
                count = body.readinto(view[filled:])
                if not count:
                    break
                filled += count
        finally:
            view.release()
            body.close()
        if filled < length:
            del buffer[filled:]
        # A bytearray is bytes-like for every caller (slicing, AES-GCM, hashing).
        return cast(bytes, buffer)

    def _direct_url_base(self) -> str:
        """Where objects of this bucket live, as botocore addresses them (asked once)."""
        if self._direct_base is None:
            probe = "agencyops-probe"
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": probe}
            )
            parts = urllib.parse.urlsplit(url)
            if not parts.path.endswith("/" + probe):
                raise ValueError("unexpected presigned URL shape")
            path = parts.path[: -len(probe)]
            self._direct_base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return self._direct_base

    def _direct_open(self, key: str, byte_range: str | None = None) -> DirectBody | None:
        """GET an object with one signed request on the client's own connection pool.

        botocore spends about a millisecond of CPU per call on events, endpoint rules and
        response parsing; a restore makes one call per chunk. This path signs the same SigV4
        request and sends it through the client's HTTP session (same pool, proxies, TLS
        settings), but only the success path is taken here: any error, odd status or
        exception returns None and the caller repeats the request through botocore, whose
        retries and error translation then apply unchanged.
        """
        if not self._direct_enabled or self._credentials is None:
            return None
        try:
            url = self._direct_url_base() + urllib.parse.quote(key, safe="/~")
            region = self._client.meta.region_name or "us-east-1"
            session = self._client._endpoint.http_session  # type: ignore[attr-defined]
        except Exception:
            # This botocore does not fit the fast path: use the normal one from now on.
            self._direct_enabled = False
            return None
        try:
            # A pack's blobs are read by range: signed like the rest (Range is a signed header).
            headers = {"Range": byte_range} if byte_range else {}
            request = AWSRequest(method="GET", url=url, headers=headers)
            credentials = self._credentials.get_frozen_credentials()
            S3SigV4Auth(credentials, "s3", region).add_auth(request)
            prepared = request.prepare()
            prepared.stream_output = True
            response = session.send(prepared)
        except Exception:
            # botocore repeats the request, with its retries and error reports.
            return None
        if response.status_code != (206 if byte_range else 200):
            # An archived object answers 403 InvalidObjectState: about the object, not the
            # path, which stays fine for every other one (the error body is a few hundred bytes).
            archived = response.status_code == 403 and b"InvalidObjectState" in response.content
            response.raw.close()
            if not archived and response.status_code not in (404, 429, 500, 502, 503, 504):
                # E.g. a region redirect or a signing mismatch: leave it to botocore for good.
                self._direct_enabled = False
            return None
        return DirectBody(response, self, key)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        body = ResumingReader(self, key)
        try:
            # The reader has read()/readinto()/close(), all callers of a BinaryIO use here.
            yield cast(BinaryIO, body)
        finally:
            body.close()

    def _open_from(
        self, key: str, offset: int, etag: str | None, end: int | None = None
    ) -> tuple[Any, int, str | None]:
        """Start reading `key` at `offset`: (body, total length or -1, etag).

        The first request tries the fast path; a resumed one asks botocore for the rest of the
        same version (If-Match on the ETag), so a body stitched from two responses can never
        mix two versions of an object.
        """
        if offset == 0 and end is None:
            direct = self._direct_open(key)
            if direct is not None:
                return direct, direct.length, direct.etag
        if end is not None and etag is None:
            direct = self._direct_open(key, f"bytes={offset}-{end - 1}")
            if direct is not None:
                length = offset + direct.length if direct.length >= 0 else -1
                return direct, length, direct.etag
        extra: dict[str, Any] = {}
        if end is not None:
            extra["Range"] = f"bytes={offset}-{end - 1}"
        elif offset:
            extra["Range"] = f"bytes={offset}-"
        if etag:
            extra["IfMatch"] = f'"{etag}"'
        with self.translate_errors("get", key):
            response = self._client.get_object(Bucket=self.bucket, Key=key, **extra)
        length = int(response.get("ContentLength", -1))
        if offset and length >= 0:
            length += offset
        found = str(response.get("ETag", "")).strip('"') or None
        return TranslatingReader(response["Body"], self, key), length, found

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self.translate_errors("head", key):
                resp = self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=resp["ContentLength"],
            mtime=resp["LastModified"],
            etag=resp["ETag"].strip('"'),
            storage_class=str(resp.get("StorageClass") or "STANDARD"),
        )
