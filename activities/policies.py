"""Timeouts and retry policies of every activity kind, as named constants.

Retries belong to Temporal (durable, visible in the UI); the openai SDK runs with
`max_retries=0`. Non-retryable provider errors (4xx other than 408/409/429) come back as
non-retryable `ApplicationError`s from `agent.llm.errors.to_application_error`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from agent.contract.errors import WorkflowErrorType

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
    maximum_attempts=6,
    non_retryable_error_types=[WorkflowErrorType.TASK_NOT_FOUND],
)
"""Rate limits and outages are retried with backoff (`Retry-After` wins when given)."""

CHUNK_FLUSH_INTERVAL_SECONDS = 0.1
"""`LLM_CHUNK` notifications are batched about every 100 ms, never one per token."""

DB_LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)
"""The DB activities run as local activities; a retry backoff longer than this waits on a
durable workflow timer instead of in the worker's memory."""
