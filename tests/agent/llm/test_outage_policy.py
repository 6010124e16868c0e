"""The retry decision of a failed LLM attempt: delay, `Retry-After`, giving up."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from agent.llm.errors import LLMErrorType
from agent.llm.outage import OutageTolerance, retry_or_give_up

TOLERANCE = OutageTolerance(tolerance=timedelta(minutes=5), max_interval=timedelta(seconds=60))


def decide(error: ApplicationError, attempt: int, waited_seconds: float) -> ApplicationError:
    return retry_or_give_up(
        error,
        attempt=attempt,
        waited=timedelta(seconds=waited_seconds),
        tolerance=TOLERANCE,
        endpoint="http://llm.example/v1",
        model="gpt-4o-mini",
    )


def server_error(delay: timedelta | None = None) -> ApplicationError:
    return ApplicationError(
        "LLM provider answered 503: down",
        {"status_code": 503},
        type=LLMErrorType.SERVER_ERROR,
        next_retry_delay=delay,
    )


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [TOLERANCE.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 50)]

    assert delays == [1, 2, 4, 60, 60, 60]


def test_retry_after_wins_over_backoff() -> None:
    decided = decide(server_error(timedelta(seconds=7)), attempt=1, waited_seconds=0)

    assert not decided.non_retryable
    assert decided.next_retry_delay == timedelta(seconds=7)
    assert decided.type == LLMErrorType.SERVER_ERROR
    assert decided.details == ({"status_code": 503},)


def test_last_wait_ends_with_the_tolerance() -> None:
    decided = decide(server_error(), attempt=9, waited_seconds=290)

    assert decided.next_retry_delay == timedelta(seconds=10)


def test_gives_up_once_the_tolerance_is_spent() -> None:
    decided = decide(server_error(), attempt=12, waited_seconds=301)

    assert decided.non_retryable
    assert decided.type == LLMErrorType.PROVIDER_UNAVAILABLE
    assert "http://llm.example/v1" in decided.message
    assert "503: down" in decided.message


def test_non_retryable_errors_are_left_alone() -> None:
    error = ApplicationError("bad", type=LLMErrorType.BAD_REQUEST, non_retryable=True)

    assert decide(error, attempt=1, waited_seconds=0) is error


def test_the_attempt_at_the_tolerance_end_is_the_last() -> None:
    # The last wait ends with the tolerance: the attempt made then is the last one.
    decided = decide(server_error(), attempt=9, waited_seconds=290)
    assert decided.next_retry_delay is not None
    next_attempt_waited = timedelta(seconds=290) + decided.next_retry_delay

    assert not TOLERANCE.is_last_attempt(timedelta(seconds=290))
    assert TOLERANCE.is_last_attempt(next_attempt_waited)
    assert decide(server_error(), attempt=10, waited_seconds=300).non_retryable
