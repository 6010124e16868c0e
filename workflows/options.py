"""Activity options of the workflows: which timeouts and retry policy each kind runs with.

The timeouts and policies themselves are named constants in `activities.policies`; this
module only groups them per kind of activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.policies import (
        DB_LOCAL_RETRY_THRESHOLD,
        DB_RETRY_POLICY,
        DB_START_TO_CLOSE_TIMEOUT,
        LLM_HEARTBEAT_TIMEOUT,
        LLM_RETRY_POLICY,
        LLM_START_TO_CLOSE_TIMEOUT,
        PIN_TOOLS_RETRY_POLICY,
        PIN_TOOLS_START_TO_CLOSE_TIMEOUT,
        PRUNE_HEARTBEAT_TIMEOUT,
        PRUNE_RETRY_POLICY,
        PRUNE_START_TO_CLOSE_TIMEOUT,
        TOOL_CALL_RETRY_POLICY,
        TOOL_CALL_TIMEOUT_MARGIN,
        TOOL_HEARTBEAT_TIMEOUT,
        WATCH_HEARTBEAT_TIMEOUT,
        WATCH_RETRY_POLICY,
        WATCH_START_TO_CLOSE_TIMEOUT,
        llm_schedule_to_close,
    )


def db_options() -> dict[str, Any]:
    """Options of the DB-only activities (idempotent, short)."""
    return {"start_to_close_timeout": DB_START_TO_CLOSE_TIMEOUT, "retry_policy": DB_RETRY_POLICY}


def local_db_options() -> dict[str, Any]:
    """Options of the DB activities run as local activities (`start_task`, `finish_task`).

    A workflow cancel that lands while a local activity runs is erased when the activity
    completes anyway (the SDK resolves it with its result), so the workflow checks
    `workflow.cancellation_reason()` after `start_task`; at `finish_task` the status is
    already decided. The DB activities in between stay regular: the cost of a check after
    each is not worth the round trip they would save on rare paths (pauses, skips).
    """
    return {**db_options(), "local_retry_threshold": DB_LOCAL_RETRY_THRESHOLD}


def llm_options(outage_tolerance_seconds: float | None = None) -> dict[str, Any]:
    """Options of the LLM activities (bounded by the task's outage tolerance, when set)."""
    return {
        "start_to_close_timeout": LLM_START_TO_CLOSE_TIMEOUT,
        "schedule_to_close_timeout": llm_schedule_to_close(outage_tolerance_seconds),
        "heartbeat_timeout": LLM_HEARTBEAT_TIMEOUT,
        "retry_policy": LLM_RETRY_POLICY,
        # Wait for the activity to close its stream and record partial usage, so the
        # cancellation event is written after the agent's last event.
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


def pin_tools_options() -> dict[str, Any]:
    """Options of `pin_task_tools` (lists every server's tools once, at task start)."""
    return {
        "start_to_close_timeout": PIN_TOOLS_START_TO_CLOSE_TIMEOUT,
        "retry_policy": PIN_TOOLS_RETRY_POLICY,
    }


def tool_call_options(timeout_seconds: float) -> dict[str, Any]:
    """Options of one tool call: the tool's own timeout, heartbeats, bounded attempts."""
    return {
        "start_to_close_timeout": timedelta(seconds=timeout_seconds) + TOOL_CALL_TIMEOUT_MARGIN,
        "heartbeat_timeout": TOOL_HEARTBEAT_TIMEOUT,
        "retry_policy": TOOL_CALL_RETRY_POLICY,
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


def watch_options() -> dict[str, Any]:
    """Options of `await_task_closed` (waits as long as the task runs, heartbeating)."""
    return {
        "start_to_close_timeout": WATCH_START_TO_CLOSE_TIMEOUT,
        "heartbeat_timeout": WATCH_HEARTBEAT_TIMEOUT,
        "retry_policy": WATCH_RETRY_POLICY,
    }


def prune_options() -> dict[str, Any]:
    """Options of `prune_finished_tasks` (batches committed one by one, heartbeating)."""
    return {
        "start_to_close_timeout": PRUNE_START_TO_CLOSE_TIMEOUT,
        "heartbeat_timeout": PRUNE_HEARTBEAT_TIMEOUT,
        "retry_policy": PRUNE_RETRY_POLICY,
    }
