"""Provider errors -> Temporal retry decisions.

Retries belong to Temporal (durable, visible in the UI); the openai SDK runs with
`max_retries=0` and every failure of an LLM call is turned into an `ApplicationError` here:
connection errors, timeouts, cut streams, 408, 409, 429 and 5xx are retryable; any other
4xx is non-retryable with a type naming the cause. A `retry-after-ms` / `Retry-After`
header becomes the error's `next_retry_delay`, which overrides the retry policy's backoff
for that one attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx
import httpx2
import openai
from temporalio.exceptions import ApplicationError

RETRY_AFTER_MS_HEADER = "retry-after-ms"
RETRY_AFTER_HEADER = "retry-after"

HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_REQUEST_TIMEOUT = 408
HTTP_CONFLICT = 409
HTTP_PAYLOAD_TOO_LARGE = 413
HTTP_UNPROCESSABLE = 422
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR_MIN = 500

QUOTA_EXHAUSTED_CODE = "insufficient_quota"
"""OpenAI answers 429 with this code when the account is out of credit: retrying cannot help."""


class LLMErrorType(StrEnum):
    """`ApplicationError.type` of every LLM failure (retry policies may list them)."""

    RATE_LIMITED = "LLMRateLimited"
    QUOTA_EXCEEDED = "LLMQuotaExceeded"
    SERVER_ERROR = "LLMServerError"
    CONNECTION_ERROR = "LLMConnectionError"
    TIMEOUT = "LLMTimeout"
    REQUEST_TIMEOUT = "LLMRequestTimeout"
    CONFLICT = "LLMConflict"
    STREAM_CUT = "LLMStreamCut"
    STREAM_ERROR = "LLMStreamError"
    INVALID_RESPONSE = "LLMInvalidResponse"
    BAD_REQUEST = "LLMBadRequest"
    AUTHENTICATION = "LLMAuthenticationError"
    PERMISSION_DENIED = "LLMPermissionDenied"
    NOT_FOUND = "LLMNotFound"
    REQUEST_TOO_LARGE = "LLMRequestTooLarge"
    UNPROCESSABLE = "LLMUnprocessable"
    CLIENT_ERROR = "LLMClientError"
    UNEXPECTED = "LLMUnexpectedError"
    PROVIDER_UNAVAILABLE = "LLMProviderUnavailable"
    """Transient failures outlasted the call's outage tolerance (see `agent.llm.outage`)."""
    CIRCUIT_OPEN = "LLMCircuitOpen"
    """The route's breaker is open (`agent.llm.breaker`): no request was sent."""


NON_RETRYABLE_ERROR_TYPES: frozenset[str] = frozenset(
    {
        LLMErrorType.QUOTA_EXCEEDED,
        LLMErrorType.BAD_REQUEST,
        LLMErrorType.AUTHENTICATION,
        LLMErrorType.PERMISSION_DENIED,
        LLMErrorType.NOT_FOUND,
        LLMErrorType.REQUEST_TOO_LARGE,
        LLMErrorType.UNPROCESSABLE,
        LLMErrorType.CLIENT_ERROR,
        LLMErrorType.PROVIDER_UNAVAILABLE,
    }
)
"""Types `to_application_error` marks non-retryable; usable as a RetryPolicy's list."""

_CLIENT_ERROR_TYPES: dict[int, LLMErrorType] = {
    HTTP_BAD_REQUEST: LLMErrorType.BAD_REQUEST,
    HTTP_UNAUTHORIZED: LLMErrorType.AUTHENTICATION,
    HTTP_FORBIDDEN: LLMErrorType.PERMISSION_DENIED,
    HTTP_NOT_FOUND: LLMErrorType.NOT_FOUND,
    HTTP_PAYLOAD_TOO_LARGE: LLMErrorType.REQUEST_TOO_LARGE,
    HTTP_UNPROCESSABLE: LLMErrorType.UNPROCESSABLE,
}


# The openai SDK wraps transport failures, but a raw httpx/httpx2 error can still escape
# from a stream being read, so both client libraries are mapped.
_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    httpx.TimeoutException,
    httpx2.TimeoutException,
    TimeoutError,
)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,
    httpx.TransportError,
    httpx2.TransportError,
    ConnectionError,
)


class LLMStreamCutError(Exception):
    """A stream ended without a `finish_reason` (no `[DONE]`): the answer is incomplete."""

    def __init__(self, received_chars: int) -> None:
        super().__init__(f"LLM stream ended before completion after {received_chars} characters")
        self.received_chars = received_chars


class CircuitOpenError(Exception):
    """The route's breaker is open: no request was sent; try again in `retry_in` seconds."""

    def __init__(self, endpoint: str, model: str, retry_in: float, last_error: str = "") -> None:
        super().__init__(
            f"circuit open for {endpoint} ({model}), next probe in {retry_in:.1f}s; "
            f"last provider error: {last_error or 'unknown'}"
        )
        self.endpoint = endpoint
        self.model = model
        self.retry_in = retry_in


def parse_retry_after(headers: Any, now: datetime | None = None) -> timedelta | None:
    """Read the delay a server asks for before the next attempt.

    `retry-after-ms` (OpenAI's millisecond header) wins over `Retry-After`, which may be
    seconds or an HTTP date.

    Args:
        headers: Response headers (case-insensitive mapping, or a plain dict).
        now: Current time for HTTP dates (defaults to the wall clock).

    Returns:
        The delay, or None when absent, unparsable, or not in the future.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    delay: timedelta | None = None
    raw_ms = lowered.get(RETRY_AFTER_MS_HEADER)
    if raw_ms is not None:
        try:
            delay = timedelta(milliseconds=float(raw_ms))
        except ValueError:
            delay = None
    raw = lowered.get(RETRY_AFTER_HEADER)
    if delay is None and raw is not None:
        try:
            delay = timedelta(seconds=float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                delay = when - (now or datetime.now(UTC))
    if delay is None or delay <= timedelta(0):
        return None
    return delay


def _status_error(exc: openai.APIStatusError) -> ApplicationError:
    status = exc.status_code
    details: dict[str, Any] = {
        "status_code": status,
        "provider_code": exc.code,
        "request_id": exc.request_id,
    }
    delay = parse_retry_after(exc.response.headers)
    message = f"LLM provider answered {status}: {exc.message}"
    if status == HTTP_TOO_MANY_REQUESTS:
        if exc.code == QUOTA_EXHAUSTED_CODE:
            return ApplicationError(
                message, details, type=LLMErrorType.QUOTA_EXCEEDED, non_retryable=True
            )
        error_type = LLMErrorType.RATE_LIMITED
    elif status >= HTTP_SERVER_ERROR_MIN:
        error_type = LLMErrorType.SERVER_ERROR
    elif status == HTTP_REQUEST_TIMEOUT:
        error_type = LLMErrorType.REQUEST_TIMEOUT
    elif status == HTTP_CONFLICT:
        error_type = LLMErrorType.CONFLICT
    else:
        return ApplicationError(
            message,
            details,
            type=_CLIENT_ERROR_TYPES.get(status, LLMErrorType.CLIENT_ERROR),
            non_retryable=True,
        )
    return ApplicationError(message, details, type=error_type, next_retry_delay=delay)


def to_application_error(exc: Exception) -> ApplicationError:
    """Map an exception raised by an LLM call to Temporal retry semantics.

    Args:
        exc: What the call raised (openai SDK errors, httpx errors, a cut stream, ...).

    Returns:
        An `ApplicationError` with a type from `LLMErrorType`, `non_retryable` set for
        4xx other than 408/409/429 (and for an exhausted quota), and `next_retry_delay`
        from `retry-after-ms` / `Retry-After` when the server sent one. An
        `ApplicationError` is returned unchanged. Raise the result `from exc`.
    """
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, _TIMEOUT_ERRORS):
        return ApplicationError(f"LLM call timed out: {exc}", type=LLMErrorType.TIMEOUT)
    if isinstance(exc, _CONNECTION_ERRORS):
        return ApplicationError(f"LLM connection failed: {exc}", type=LLMErrorType.CONNECTION_ERROR)
    if isinstance(exc, CircuitOpenError):
        return ApplicationError(
            str(exc),
            {"endpoint": exc.endpoint, "model": exc.model},
            type=LLMErrorType.CIRCUIT_OPEN,
            next_retry_delay=timedelta(seconds=max(exc.retry_in, 0.001)),
        )
    if isinstance(exc, LLMStreamCutError):
        return ApplicationError(str(exc), type=LLMErrorType.STREAM_CUT)
    if isinstance(exc, openai.APIResponseValidationError):
        return ApplicationError(
            f"LLM response did not match the schema: {exc}", type=LLMErrorType.INVALID_RESPONSE
        )
    if isinstance(exc, openai.APIError):
        return ApplicationError(
            f"LLM stream reported an error: {exc.message}", type=LLMErrorType.STREAM_ERROR
        )
    return ApplicationError(
        f"Unexpected LLM failure: {type(exc).__name__}: {exc}", type=LLMErrorType.UNEXPECTED
    )
