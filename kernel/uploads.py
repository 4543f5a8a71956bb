"""Uploads with a size limit enforced while they stream, before Django's own handlers write
more of them to a temporary file (an export of many gigabytes is refused at the limit, not
after it has been read whole)."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


class SizeLimit(FileUploadHandler):
    """Stops the upload once its files pass `limit` bytes; `exceeded` says it did."""

    def __init__(self, request: Any, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.seen = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.seen += len(raw_data)
        if self.seen > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


# The multipart framing around the file is small; a body larger than this is refused unread.
FRAMING_BYTES = 64 * 1024


def upload_limit(request: HttpRequest, limit: int) -> SizeLimit | None:
    """Put a size limit in front of the request's upload handlers (call before reading
    request.FILES); None when the declared length alone already passes the limit."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit + FRAMING_BYTES:
        return None
    guard = SizeLimit(request, limit)
    request.upload_handlers = [guard, *request.upload_handlers]
    return guard
