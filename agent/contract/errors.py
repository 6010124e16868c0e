"""Error vocabulary: the API's error codes and the workflow's `ApplicationError` types.

`ErrorCode` is the `error.code` of every JSON error body (clients branch on it).
`WorkflowErrorType` is the `type` of the `ApplicationError`s the workflow's resume validator
and the activities raise; the API maps them to error codes and retry policies list them.
LLM failures have their own types in `agent.llm.errors.LLMErrorType`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable, machine-readable error codes."""

    VALIDATION_ERROR = "validation_error"
    INVALID_CURSOR = "invalid_cursor"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TASK_NOT_PAUSED = "task_not_paused"
    TASK_FINISHED = "task_finished"
    RESUME_REJECTED = "resume_rejected"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    """A valid key without the role the operation needs (e.g. not an admin key)."""
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    SPEND_LIMIT_REACHED = "spend_limit_reached"
    """The user's daily token or cost limit is used up; details say when it resets."""
    """Too many requests for this key, or too many rejected keys from this address."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"
    HTTP_ERROR = "http_error"


class WorkflowErrorType(StrEnum):
    """`ApplicationError.type` values raised by the workflow and its activities."""

    TASK_NOT_PAUSED = "TaskNotPaused"
    ALREADY_RESUMED = "AlreadyResumed"
    WRONG_BREAKPOINT = "WrongBreakpoint"
    INVALID_ACTION = "InvalidAction"
    INVALID_PLAN_EDIT = "InvalidPlanEdit"
    TASK_NOT_FOUND = "TaskNotFoundError"
    """An activity's task row does not exist (not retryable)."""
    MILESTONE_NOT_FOUND = "MilestoneNotFound"
    """An activity's milestone row does not exist (not retryable)."""
    CONTEXT_NOT_FOUND = "ContextNotFound"
    TOOL_UNAVAILABLE = "ToolUnavailable"
    """A task's tool server could not be reached, or a pinned tool is gone or denied."""
    TOOL_CALL_FAILED = "ToolCallFailed"
    """A `safe` tool's call ended without a result (timeout, server lost): retried."""
