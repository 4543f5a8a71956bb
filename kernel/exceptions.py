"""Application errors raised by services and mapped to HTTP by one handler (kernel.api)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ApplicationError(Exception):
    """A rule of the domain refused the operation. `status` is the HTTP answer it maps to."""

    status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, fields: Mapping[str, Sequence[str] | str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = {
            name: [errors] if isinstance(errors, str) else list(errors)
            for name, errors in (fields or {}).items()
        }


class ValidationFailed(ApplicationError):
    status = 400
    code = "invalid"


class NotFound(ApplicationError):
    """Absent, another organization's, or not granted: the caller cannot tell which."""

    status = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class Forbidden(ApplicationError):
    status = 403
    code = "forbidden"


class Conflict(ApplicationError):
    """The object's state does not allow the operation now (legal hold, already revoked…)."""

    status = 409
    code = "conflict"


class LegalHoldActive(Conflict):
    """A legal hold covers the scope: no deletion may be drafted, approved or executed."""

    code = "legal_hold_active"


class RetentionActive(Conflict):
    """A retain-type obligation keeps the scope's data until it expires."""

    code = "retention_active"


class SelfApprovalForbidden(Forbidden):
    """Four eyes: whoever requested a deletion cannot approve it."""

    code = "self_approval_forbidden"
