"""Tools: what a task may call, a model's call, and what the call returned.

Shared by the tool layer (`agent.tools`, MCP servers), the LLM layer (OpenAI function
calling), the workflow (one activity per call), the API (a task's `tools`) and the clients.

Names: a person and the policy name a tool `server.tool` (`time.get_current_time`). OpenAI
function names allow only `[a-zA-Z0-9_-]{1,64}`, so the model sees `server__tool`
(`function_name`); the pinned tool list maps it back, nothing parses it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field

FUNCTION_NAME_SEPARATOR = "__"
"""Joins server and tool into the function name the model sees."""


class ToolRetry(StrEnum):
    """Whether a failed or lost call may run again."""

    SAFE = "safe"
    """Idempotent or read-only: Temporal's retry policy runs it again."""
    NEVER = "never"
    """Runs at most once per decision: a failure goes back to the model as an error result."""


def qualified_name(server: str, tool: str) -> str:
    """The name people and policies use for a tool: `server.tool`."""
    return f"{server}.{tool}"


def function_name(server: str, tool: str) -> str:
    """The function name the model sees for a tool: `server__tool`."""
    return f"{server}{FUNCTION_NAME_SEPARATOR}{tool}"


class ToolSpec(BaseModel):
    """One tool a task may call, as read from its server and pinned at task start."""

    model_config = ConfigDict(frozen=True)

    server: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    needs_approval: bool = False
    """The server's policy says a person approves each call (`before_tool` breakpoint)."""
    retry: ToolRetry = ToolRetry.NEVER
    timeout_seconds: float = Field(default=30.0, gt=0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def qualified_name(self) -> str:
        """`server.tool`."""
        return qualified_name(self.server, self.name)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def function_name(self) -> str:
        """The function name the model sees: `server__tool`."""
        return function_name(self.server, self.name)


class ToolCall(BaseModel):
    """One call a model asked for, exactly as it asked (arguments are its raw JSON text)."""

    model_config = ConfigDict(frozen=True)

    id: str
    """The provider's call id; the `role: tool` message that answers it carries it back."""
    function_name: str
    arguments: str = ""


class ToolResult(BaseModel):
    """What a tool call returned, as stored whole; the model may see a cut version."""

    call_id: str
    content: str
    is_error: bool = False


class ToolCallStatus(StrEnum):
    """Where one tool call stands."""

    REQUESTED = "requested"
    """Valid and allowed; runs without a person's approval."""
    AWAITING_APPROVAL = "awaiting_approval"
    """Its tool needs approval: the task pauses at `before_tool`."""
    APPROVED = "approved"
    REJECTED = "rejected"
    """Not made: unknown or disallowed tool, arguments not JSON or not fitting the schema."""
    DENIED = "denied"
    """A person denied it; their feedback is the result the model sees."""
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    """A `never` call whose attempt was lost mid-call: not executed a second time."""

    @property
    def is_final(self) -> bool:
        """Whether the call has its result (nothing more will run)."""
        return self in _FINAL_CALL_STATUSES


_FINAL_CALL_STATUSES = frozenset(
    {
        ToolCallStatus.REJECTED,
        ToolCallStatus.DENIED,
        ToolCallStatus.COMPLETED,
        ToolCallStatus.FAILED,
        ToolCallStatus.LOST,
    }
)


class ToolCallRef(BaseModel):
    """A tool call as the workflow sees it: ids, policy and state, never its result."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    """The `tool_calls` row."""
    call_id: str
    function_name: str
    server: str | None = None
    tool: str | None = None
    arguments: str = ""
    status: ToolCallStatus
    retry: ToolRetry = ToolRetry.NEVER
    timeout_seconds: float = 30.0

    @property
    def label(self) -> str:
        """`server.tool`, or the function name the model used when it matches no tool."""
        if self.server is None or self.tool is None:
            return self.function_name
        return qualified_name(self.server, self.tool)


TOOL_RESULT_PREVIEW_CHARS = 500
"""How much of a call's result `GET /v1/tasks/{id}/tool-calls` shows (`result_chars` is whole)."""


class ToolCallView(BaseModel):
    """One tool call as `GET /v1/tasks/{id}/tool-calls` serves it (and clients read it)."""

    id: UUID
    milestone_key: str
    attempt: int
    turn: int
    position: int
    call_id: str
    function_name: str
    server: str | None = None
    tool: str | None = None
    arguments: str = ""
    """The arguments the call ran (or would run) with: the model's, or a person's edit."""
    status: ToolCallStatus
    executions: int = 0
    """How many times the tool was executed for this call (at most 1 for `never` tools)."""
    result_preview: str | None = None
    result_chars: int = 0
    is_error: bool = False
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    """From the last execution's start to the result (None before it ends or when not run)."""

    @property
    def label(self) -> str:
        """`server.tool`, or the function name the model used when it matches no tool."""
        if self.server is None or self.tool is None:
            return self.function_name
        return qualified_name(self.server, self.tool)


class ToolCallList(BaseModel):
    """Body of `GET /v1/tasks/{id}/tool-calls`: every call of the task, oldest first."""

    items: list[ToolCallView] = Field(default_factory=list)
