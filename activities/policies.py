"""Timeouts and retry policies of every activity kind, as named constants.

Retries belong to Temporal (durable, visible in the UI); the openai SDK runs with
`max_retries=0`. Non-retryable provider errors (4xx other than 408/409/429) come back as
non-retryable `ApplicationError`s from `agent.llm.errors.to_application_error`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from agent.contract.errors import WorkflowErrorType
from agent.llm.errors import LLMErrorType

DB_START_TO_CLOSE_TIMEOUT = timedelta(seconds=30)
"""A state-change activity is a handful of statements in one transaction."""

DB_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=30,
    non_retryable_error_types=[WorkflowErrorType.TASK_NOT_FOUND],
)
"""PostgreSQL restarts and failovers are waited out; a missing task is not."""

LLM_START_TO_CLOSE_TIMEOUT = timedelta(minutes=10)
"""Upper bound of one LLM call, streaming included."""

LLM_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""A stream that delivers nothing for this long is considered hung and retried."""

LLM_HEARTBEAT_INTERVAL_SECONDS = 5.0
"""Heartbeat at least this often while waiting for the first token (well below the timeout)."""

LLM_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,
    non_retryable_error_types=[
        WorkflowErrorType.TASK_NOT_FOUND,
        LLMErrorType.PROVIDER_UNAVAILABLE,
    ],
)
"""Rate limits and outages are retried without an attempt limit: the activity itself sets
each retry's delay (`Retry-After`, else capped backoff) and gives up with non-retryable
`LLMProviderUnavailable` once the outage outlasted its tolerance (`agent.llm.outage`)."""


def llm_schedule_to_close(tolerance_seconds: float | None) -> timedelta | None:
    """The hard bound of one LLM activity: its outage tolerance plus one attempt.

    The activity gives up by itself when the tolerance is spent; this bound, enforced by
    the Temporal server, also ends retries of failures that are not the provider's
    (a database outage, a bug) and a worker that dies on every attempt. None (a task
    without its own tolerance) leaves the worker's `AGENT_LLM_OUTAGE_TOLERANCE` in charge.
    """
    if tolerance_seconds is None:
        return None
    return timedelta(seconds=tolerance_seconds) + LLM_START_TO_CLOSE_TIMEOUT


def outage_tolerance(schedule_to_close: timedelta | None, default_seconds: float) -> timedelta:
    """The outage tolerance of the running LLM activity (inverse of `llm_schedule_to_close`)."""
    if schedule_to_close is None or schedule_to_close <= LLM_START_TO_CLOSE_TIMEOUT:
        return timedelta(seconds=default_seconds)
    return schedule_to_close - LLM_START_TO_CLOSE_TIMEOUT


TOOL_CALL_MAX_ATTEMPTS = 5
"""Attempts of one tool call activity. A `never` tool runs at most once however many there
are (a later attempt finds the call started and does not run it again); a `safe` tool and a
server that could not be reached are retried up to this many times."""

TOOL_CALL_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=TOOL_CALL_MAX_ATTEMPTS,
    non_retryable_error_types=[WorkflowErrorType.TASK_NOT_FOUND],
)

TOOL_HEARTBEAT_TIMEOUT = timedelta(seconds=20)
"""A tool call whose worker stops heartbeating this long is lost (and retried or reported)."""

TOOL_HEARTBEAT_INTERVAL_SECONDS = 5.0

TOOL_CALL_TIMEOUT_MARGIN = timedelta(seconds=30)
"""Start-to-close of a tool call: the tool's own timeout plus this (database steps, start)."""

PIN_TOOLS_START_TO_CLOSE_TIMEOUT = timedelta(minutes=2)
"""Listing every server's tools, starting stdio servers included."""

PIN_TOOLS_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[WorkflowErrorType.TASK_NOT_FOUND],
)
"""A tool server that stays unreachable fails the task (naming it) after a few minutes."""

CHUNK_FLUSH_INTERVAL_SECONDS = 0.1
"""`LLM_CHUNK` notifications are batched about every 100 ms, never one per token."""

DB_LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)
"""The DB activities run as local activities; a retry backoff longer than this waits on a
durable workflow timer instead of in the worker's memory."""


def provider_unavailable_error(exc: ActivityError) -> bool:
    """Whether an LLM activity failed because the provider stayed down past the tolerance.

    Either the activity gave up itself (`LLMProviderUnavailable`), or the server's
    schedule-to-close bound (see `llm_schedule_to_close`) ended its retries first.
    """
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == LLMErrorType.PROVIDER_UNAVAILABLE:
        return True
    # The server ends retries that would pass the bound with the last failure as it is.
    if exc.retry_state == RetryState.TIMEOUT:
        return True
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_CLOSE


WATCH_HEARTBEAT_INTERVAL_SECONDS = 10.0
"""How often `await_task_closed` reports that it still waits."""

WATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=60)
"""A watcher silent this long died with its worker; another attempt waits on."""

WATCH_START_TO_CLOSE_TIMEOUT = timedelta(days=1)
"""One attempt of `await_task_closed`; a task running longer is awaited by the next one."""

WATCH_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
"""Unlimited attempts: the slot stays held until the task workflow has really closed."""


PRUNE_START_TO_CLOSE_TIMEOUT = timedelta(hours=6)
"""One attempt of the retention prune; a first run over years of history takes a while."""

PRUNE_HEARTBEAT_TIMEOUT = timedelta(minutes=2)
"""A prune heartbeats after every committed batch (seconds each); silent this long, it died."""

PRUNE_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=10,
)
"""Batches already committed stay pruned; a retry carries on with the tasks still whole."""
