"""Domain errors. Each carries its HTTP status; the web layer renders them in one place."""

from __future__ import annotations


class EyesError(Exception):
    """An error a user can act on. `message` says what went wrong and what to do next."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(EyesError):
    pass


class InvalidImage(EyesError):
    status_code = 422
    code = "invalid_image"


class UnsupportedMediaType(EyesError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(EyesError):
    status_code = 413
    code = "payload_too_large"


class NotAuthenticated(EyesError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(EyesError):
    status_code = 403
    code = "forbidden"


class NotFound(EyesError):
    status_code = 404
    code = "not_found"


class Conflict(EyesError):
    status_code = 409
    code = "conflict"


class QuotaExceeded(EyesError):
    status_code = 413
    code = "quota_exceeded"


class ServiceUnavailable(EyesError):
    status_code = 503
    code = "unavailable"


class Busy(ServiceUnavailable):
    """The server is at its limit of expensive work: nothing was done; try again after `retry_after` s."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class TooManyRequests(EyesError):
    """Too much, too fast: the client may try again after `retry_after` seconds."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
