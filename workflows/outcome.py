"""How a task ends: the stable failure reasons and the exception that carries them.

Pure types, safe in the workflow sandbox: `TaskWorkflow` raises `EndTaskError` anywhere in
its steps and turns it into the task's terminal status in `finish_task`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agent.events.types import TaskStatus

ERROR_MAX_CHARS = 2000
"""The task's `error` column keeps this much of an exception chain."""

ERROR_MAX_CAUSES = 4
"""An exception chain is shown this many links deep."""


class FailureReason(StrEnum):
    """Stable `failure_reason` of a task that did not complete."""

    BUDGET_EXCEEDED = "budget_exceeded"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    MILESTONES_FAILED = "milestones_failed"
    INVALID_PLAN = "invalid_plan"
    CONTEXT_TOO_LARGE = "context_too_large"
    ACTIVITY_FAILED = "activity_failed"
    COST_UNKNOWN = "cost_unknown"
    """A call's model has no price while the task has a USD limit: it cannot be enforced."""
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    """An LLM call's provider stayed down (or kept refusing) past the outage tolerance."""
    BREAKPOINT_TIMED_OUT = "breakpoint_timed_out"
    """Nobody answered a breakpoint whose default action had already led back to it."""
    TOOL_UNAVAILABLE = "tool_unavailable"
    """A tool server could not be reached at task start, or a requested tool is gone."""
    SPEND_LIMIT_REACHED = "spend_limit_reached"
    """The user's daily spend limit was reached and `AGENT_SPEND_LIMIT_ACTION` is `fail`."""


@dataclass
class EndTaskError(Exception):
    """Raised inside the workflow to end the task cleanly with a status and reason."""

    status: TaskStatus
    reason: FailureReason | None = None
    error: str | None = None


def error_text(exc: BaseException) -> str:
    """An exception and its causes, shortened for the task's `error` column."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < ERROR_MAX_CAUSES:
        parts.append(str(current))
        current = current.__cause__
    return " <- ".join(p for p in parts if p)[:ERROR_MAX_CHARS]
