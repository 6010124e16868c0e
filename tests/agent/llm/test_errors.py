from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import httpx2
import openai
import pytest
from temporalio.exceptions import ApplicationError

from agent.llm.errors import (
    NON_RETRYABLE_ERROR_TYPES,
    LLMErrorType,
    LLMStreamCutError,
    parse_retry_after,
    to_application_error,
)

URL = "http://llm.test/v1/chat/completions"


def _request() -> httpx2.Request:
    return httpx2.Request("POST", URL)


def status_error(
    status: int, headers: dict[str, str] | None = None, code: str | None = None
) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=_request())
    body = {"message": "boom", "type": "x", "param": None, "code": code}
    return openai.APIStatusError("boom", response=response, body=body)


@pytest.mark.parametrize(
    ("status", "expected_type"),
    [
        (429, LLMErrorType.RATE_LIMITED),
        (500, LLMErrorType.SERVER_ERROR),
        (502, LLMErrorType.SERVER_ERROR),
        (503, LLMErrorType.SERVER_ERROR),
        (408, LLMErrorType.REQUEST_TIMEOUT),
        (409, LLMErrorType.CONFLICT),
    ],
)
def test_transient_statuses_are_retryable(status: int, expected_type: LLMErrorType) -> None:
    error = to_application_error(status_error(status))

    assert error.type == expected_type
    assert error.non_retryable is False
    assert error.next_retry_delay is None


@pytest.mark.parametrize(
    ("status", "expected_type"),
    [
        (400, LLMErrorType.BAD_REQUEST),
        (401, LLMErrorType.AUTHENTICATION),
        (403, LLMErrorType.PERMISSION_DENIED),
        (404, LLMErrorType.NOT_FOUND),
        (413, LLMErrorType.REQUEST_TOO_LARGE),
        (422, LLMErrorType.UNPROCESSABLE),
        (418, LLMErrorType.CLIENT_ERROR),
    ],
)
def test_other_client_errors_are_non_retryable(status: int, expected_type: LLMErrorType) -> None:
    error = to_application_error(status_error(status))

    assert error.type == expected_type
    assert error.non_retryable is True
    assert error.type in NON_RETRYABLE_ERROR_TYPES


def test_status_error_details_carry_status_and_provider_code() -> None:
    error = to_application_error(status_error(400, code="context_length_exceeded"))

    assert error.details[0]["status_code"] == 400
    assert error.details[0]["provider_code"] == "context_length_exceeded"


def test_retry_after_ms_sets_next_retry_delay_and_wins_over_seconds() -> None:
    exc = status_error(429, {"retry-after-ms": "1500", "retry-after": "9"})

    error = to_application_error(exc)

    assert error.next_retry_delay == timedelta(milliseconds=1500)


def test_retry_after_seconds_sets_next_retry_delay() -> None:
    error = to_application_error(status_error(429, {"Retry-After": "7"}))

    assert error.next_retry_delay == timedelta(seconds=7)


def test_retry_after_on_a_server_error_is_honoured() -> None:
    error = to_application_error(status_error(503, {"retry-after": "3"}))

    assert error.type == LLMErrorType.SERVER_ERROR
    assert error.next_retry_delay == timedelta(seconds=3)


def test_retry_after_http_date_becomes_the_remaining_delay() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)

    delay = parse_retry_after({"Retry-After": header}, now=now)

    assert delay == timedelta(seconds=30)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "soon"},
        {"retry-after-ms": "abc"},
        {"retry-after": "0"},
        {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
    ],
)
def test_absent_invalid_or_past_retry_after_gives_no_delay(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


def test_exhausted_quota_429_is_not_retryable() -> None:
    error = to_application_error(status_error(429, code="insufficient_quota"))

    assert error.type == LLMErrorType.QUOTA_EXCEEDED
    assert error.non_retryable is True


@pytest.mark.parametrize(
    ("exc", "expected_type"),
    [
        (openai.APITimeoutError(request=_request()), LLMErrorType.TIMEOUT),
        (httpx2.ReadTimeout("slow"), LLMErrorType.TIMEOUT),
        (httpx.ReadTimeout("slow"), LLMErrorType.TIMEOUT),
        (TimeoutError(), LLMErrorType.TIMEOUT),
        (openai.APIConnectionError(request=_request()), LLMErrorType.CONNECTION_ERROR),
        (httpx2.RemoteProtocolError("peer closed"), LLMErrorType.CONNECTION_ERROR),
        (httpx.ConnectError("refused"), LLMErrorType.CONNECTION_ERROR),
        (ConnectionResetError(), LLMErrorType.CONNECTION_ERROR),
        (LLMStreamCutError(42), LLMErrorType.STREAM_CUT),
        (openai.APIError("stream error", _request(), body=None), LLMErrorType.STREAM_ERROR),
        (
            openai.APIResponseValidationError(httpx2.Response(200, request=_request()), body=None),
            LLMErrorType.INVALID_RESPONSE,
        ),
        (ValueError("weird"), LLMErrorType.UNEXPECTED),
    ],
)
def test_transport_and_stream_failures_are_retryable(
    exc: Exception, expected_type: LLMErrorType
) -> None:
    error = to_application_error(exc)

    assert error.type == expected_type
    assert error.non_retryable is False


def test_application_error_passes_through_unchanged() -> None:
    original = ApplicationError("already mapped", type="Custom", non_retryable=True)

    assert to_application_error(original) is original
