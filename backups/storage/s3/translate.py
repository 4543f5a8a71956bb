"""botocore's failures as StorageError subclasses, with a message a person can read and no
secret in it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import botocore.exceptions
from botocore.parsers import ResponseParserError

from backups.storage.errors import (
    AccessDenied,
    CredentialsError,
    EndpointUnreachable,
    ObjectArchived,
    ObjectNotFound,
    StorageError,
    StoreNotFound,
)
from backups.storage.s3.egress import REFUSED, refused

# S3 error codes, by the StorageError they become.
NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchVersion"}
NO_STORE = {"NoSuchBucket"}
BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "TokenRefreshRequired",
}
DENIED = {"AccessDenied", "Forbidden", "403", "AllAccessDisabled", "AccountProblem"}
# A read of an object in an archive class (GLACIER, DEEP_ARCHIVE) that was not retrieved.
ARCHIVED = {"InvalidObjectState"}


@contextlib.contextmanager
def botocore_errors_translated(
    operation: str, target: str, clean: Callable[[str], str]
) -> Iterator[None]:
    """Re-raise botocore failures of `operation` on `target` as StorageError subclasses;
    `clean` scrubs the store's secrets from any text botocore echoes."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = clean(str(error.get("Message", "")))
        text = f"{operation} of {target} failed: {code}" + (f" ({detail})" if detail else "")
        if code in NOT_FOUND:
            raise ObjectNotFound(text) from None
        if code in NO_STORE:
            raise StoreNotFound(text) from None
        if code in BAD_CREDENTIALS:
            raise CredentialsError(text) from None
        if code in DENIED:
            raise AccessDenied(text) from None
        if code in ARCHIVED:
            raise ObjectArchived(
                f"{text}: the object is in an archive storage class and must be retrieved "
                "(S3 RestoreObject) before it can be read"
            ) from None
        raise StorageError(text) from None
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ) as exc:
        raise CredentialsError(
            f"{operation} of {target} failed: no usable credentials ({type(exc).__name__})"
        ) from None
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
        # One wording for refused, unanswered, reset, closed and timed-out connections:
        # a failure must not tell a scanner what listens behind the address.
        if refused(exc):
            detail = f" ({REFUSED})"
        elif isinstance(exc, botocore.exceptions.SSLError):
            detail = " (TLS failed: check the endpoint's certificate)"
        else:
            detail = ""
        raise EndpointUnreachable(
            f"{operation} of {target} failed: endpoint unreachable{detail}"
        ) from None
    except ResponseParserError:
        # The message would quote the body: whatever answered is not S3.
        raise StorageError(
            f"{operation} of {target} failed: the endpoint's answer is not an S3 response"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StorageError(f"{operation} of {target} failed: {clean(str(exc))}") from None
