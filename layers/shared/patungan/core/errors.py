"""Domain errors. Each carries the API error code and HTTP status it maps to (core.http renders them)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []


class BadRequest(DomainError):
    status, code = 400, "bad_request"


class Unauthenticated(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class ConcurrentUpdate(Conflict):
    """Someone changed the same data at the same time: safe to retry (a state machine Retry matches it). Left
    over after the bounded retries (core.retry), it is no conflict the caller caused: 503, which a client and
    Xendit retry, never a 409 (issue 8)."""

    status, code = 503, "concurrent_update"


class ValidationFailed(DomainError):
    status, code = 422, "validation_error"


class RateLimited(DomainError):
    status, code = 429, "rate_limited"


class SettlementInvariantViolated(DomainError):
    """Settling or releasing a group-buy session would leave a buyer or money behind (GB-10, GB-14): the step
    refuses to declare success. Not retryable, a person has to look; the class name is the error the state
    machine catches."""

    status, code = 500, "settlement_invariant_violated"


class DependencyUnavailable(DomainError):
    """A dependency (AWS service, Xendit) did not answer: the caller may retry; nothing was lost."""

    status, code = 503, "service_unavailable"


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])
