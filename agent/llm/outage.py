"""Riding out provider outages: how long an LLM call keeps retrying, and how long it waits.

Transient failures (connection, timeouts, 408, 409, 429, 5xx, cut streams) are retried by
Temporal with no attempt limit; this module decides each retry's delay and when to stop:

* the delay is the server's `Retry-After` when it sent one, else capped exponential
  backoff (`initial * 2**(attempt-1)`, at most `AGENT_LLM_RETRY_MAX_INTERVAL_SECONDS`),
  and never beyond the end of the tolerance;
* once the call has been failing for longer than its outage tolerance (counted from the
  activity's first attempt), the failure becomes non-retryable `LLMProviderUnavailable`,
  naming the endpoint and the last error, which the workflow turns into an `on_failure`
  pause or the `provider_unavailable` failure;
* that last attempt (`OutageTolerance.is_last_attempt`) is sent to the provider even while
  the worker's circuit breaker cools down, so a call gives up on a failure seen at the end
  of its own tolerance, never on older ones alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from agent.llm.errors import LLMErrorType

INITIAL_RETRY_INTERVAL = timedelta(seconds=1)
"""Delay before the second attempt when the server asks for none."""


@dataclass(frozen=True)
class OutageTolerance:
    """How long one call may wait out an outage, and the cap of its backoff."""

    tolerance: timedelta
    max_interval: timedelta
    initial_interval: timedelta = INITIAL_RETRY_INTERVAL

    def is_last_attempt(self, waited: timedelta) -> bool:
        """Whether an attempt made `waited` after the first is the call's last one.

        `retry_or_give_up` schedules the last retry at the tolerance's end and gives up
        when an attempt made there (or later) fails.
        """
        return waited >= self.tolerance

    def backoff(self, attempt: int) -> timedelta:
        """The delay after failed attempt `attempt` (1-based) without a `Retry-After`."""
        exponent = min(max(attempt - 1, 0), 30)  # 2**30 s is far beyond any cap
        return min(self.initial_interval * (1 << exponent), self.max_interval)


def provider_unavailable(
    endpoint: str, model: str, waited: timedelta, last_error: str
) -> ApplicationError:
    """The non-retryable error of a call whose outage outlasted its tolerance."""
    seconds = int(waited.total_seconds())
    return ApplicationError(
        f"provider unavailable: {endpoint} ({model}) failed for {seconds}s, "
        f"beyond the outage tolerance; last error: {last_error}",
        {"endpoint": endpoint, "model": model, "waited_seconds": seconds, "last_error": last_error},
        type=LLMErrorType.PROVIDER_UNAVAILABLE,
        non_retryable=True,
    )


def retry_or_give_up(
    error: ApplicationError,
    *,
    attempt: int,
    waited: timedelta,
    tolerance: OutageTolerance,
    endpoint: str,
    model: str,
) -> ApplicationError:
    """Decide the retry of a failed LLM call attempt.

    Args:
        error: The attempt's failure, mapped by `to_application_error`.
        attempt: The attempt that failed (1-based).
        waited: How long the call has been retrying (first attempt scheduled -> this
            attempt scheduled).
        tolerance: The call's outage tolerance and backoff cap.
        endpoint: The provider's base URL (named when giving up).
        model: The model called.

    Returns:
        `error` unchanged when it is non-retryable; `LLMProviderUnavailable` once the
        tolerance is spent; else `error` with the delay of the next attempt set.
    """
    if error.non_retryable:
        return error
    remaining = tolerance.tolerance - waited
    if remaining <= timedelta(0):
        return provider_unavailable(endpoint, model, waited, error.message)
    delay = error.next_retry_delay or tolerance.backoff(attempt)
    # The last wait ends with the tolerance: one more attempt then decides.
    delay = max(min(delay, remaining), timedelta(milliseconds=1))
    return ApplicationError(error.message, *error.details, type=error.type, next_retry_delay=delay)
