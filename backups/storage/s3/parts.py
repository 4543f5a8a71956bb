"""What the parts of `S3ObjectStore` kept in modules of their own (archive, listing) use of it:
its bucket, its boto3 client, its error translation and its scrubbing of secrets."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class StoreParts:
    """Declared here, defined by `S3ObjectStore`."""

    bucket: str
    _client: S3Client

    def translate_errors(
        self, operation: str, key: str | None = None
    ) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _clean(self, text: str) -> str:
        raise NotImplementedError
