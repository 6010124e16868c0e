"""Request and response bodies of the HTTP API, with bounds on every input."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import (
    DEFAULT_MAX_TOOL_ROUNDS,
    MAX_GOAL_CHARS,
    MAX_TOOL_ROUNDS,
    Budget,
    PauseState,
    PlanEdit,
    Totals,
)
from agent.contract.tools import ToolSpec
from agent.events.types import (
    AgentActivityEvent,
    BreakpointKind,
    MilestoneStatus,
    TaskComplexity,
    TaskStatus,
)

MAX_PROMPT_CHARS = 200_000
MAX_FEEDBACK_CHARS = 20_000
NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"
MAX_NAME_CHARS = 255
MAX_BREAKPOINT_TIMEOUT_SECONDS = 30 * 24 * 3600.0
MAX_OUTAGE_TOLERANCE_SECONDS = 7 * 24 * 3600.0
DEFAULT_EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 500
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 200
MAX_TOOL_NAMES = 200


NUL = "\x00"


def _reject_nul(value: Any) -> Any:
    """Refuse NUL characters anywhere in a value (nested models and lists included).

    PostgreSQL `text` cannot store U+0000: left in, it fails the INSERT with a 500 (or,
    inside a plan edit, fails the workflow's activity) instead of a 422 for the field.
    """
    if isinstance(value, str):
        if NUL in value:
            raise ValueError("must not contain NUL (U+0000) characters")
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _reject_nul(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            _reject_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    return value


class _Input(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _reject_nul(value)


class TaskCreate(_Input):
    """Body of `POST /v1/tasks`."""

    goal: str = Field(min_length=1, max_length=MAX_GOAL_CHARS, description="What to achieve.")
    session_id: UUID | None = Field(default=None, description="Groups tasks of one session.")
    complexity: TaskComplexity | None = Field(
        default=None, description="Skip classification and route models for this complexity."
    )
    breakpoints: list[BreakpointKind] = Field(
        default_factory=list,
        max_length=len(BreakpointKind),
        description="Where the task pauses for a person.",
    )
    budget: Budget = Field(default_factory=Budget)
    max_parallel: int = Field(default=4, ge=1, le=32)
    max_attempts: int = Field(default=3, ge=1, le=10)
    breakpoint_timeout_seconds: float | None = Field(
        default=None, gt=0, le=MAX_BREAKPOINT_TIMEOUT_SECONDS
    )
    breakpoint_default_action: ResumeAction = ResumeAction.CONTINUE
    llm_outage_tolerance_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_OUTAGE_TOLERANCE_SECONDS,
        description="How long an LLM call waits out a provider outage before the task pauses "
        "at `on_failure` or fails with `provider_unavailable` (default "
        "`AGENT_LLM_OUTAGE_TOLERANCE`).",
    )
    tools: list[str] | None = Field(
        default=None,
        max_length=MAX_TOOL_NAMES,
        description="MCP servers (`time`) or single tools (`time.get_current_time`) the "
        "task's agents may call; default: every allowed tool of every configured server. "
        "Pinned at task start.",
    )
    max_tool_rounds: int = Field(
        default=DEFAULT_MAX_TOOL_ROUNDS,
        ge=1,
        le=MAX_TOOL_ROUNDS,
        description="Model turns with tool calls per milestone attempt before it must answer.",
    )

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))

    @field_validator("breakpoints")
    @classmethod
    def _unique_breakpoints(cls, value: list[BreakpointKind]) -> list[BreakpointKind]:
        return list(dict.fromkeys(value))


class ResumeBody(_Input):
    """Body of `POST /v1/tasks/{id}/resume`."""

    breakpoint_id: str = Field(min_length=1, max_length=255)
    action: ResumeAction = ResumeAction.CONTINUE
    edits: PlanEdit | None = None
    budget: Budget | None = None
    feedback: str | None = Field(default=None, max_length=MAX_FEEDBACK_CHARS)
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="With `edit` at `before_tool`: the call's new arguments, checked "
        "against the tool's input schema.",
    )


class TaskLinks(BaseModel):
    """Where to go next with a task."""

    self: str
    events: str
    events_ws: str
    resume: str
    cancel: str


class MilestoneOut(BaseModel):
    """One milestone of a task."""

    id: UUID
    key: str
    title: str
    description: str
    depends_on: list[str]
    position: int
    status: MilestoneStatus
    attempts: int
    output: str | None
    feedback: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    usage_estimated: bool = False
    """Some of the milestone's usage was estimated because the provider reported none."""
    started_at: datetime | None
    finished_at: datetime | None


class TaskOut(BaseModel):
    """A task, as listed."""

    id: UUID
    session_id: UUID | None
    goal: str
    status: TaskStatus
    complexity: TaskComplexity | None
    workflow_id: str
    breakpoints: list[BreakpointKind]
    budget: Budget
    max_parallel: int
    max_attempts: int
    totals: Totals
    failure_reason: str | None
    last_event_seq: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    events_pruned_at: datetime | None = None
    """Set once `agent db prune` removed the task's events and outputs (totals stay)."""
    queue_position: int | None = Field(
        default=None,
        description="While `queued`: 1 for the next of the user's tasks to start, and so on.",
    )
    links: TaskLinks


class TaskDetail(TaskOut):
    """A task with its plan, result and pause state."""

    tools_requested: list[str] | None = Field(
        default=None, description="The `tools` the task was created with (null: every tool)."
    )
    tools: list[ToolSpec] | None = Field(
        default=None,
        description="The tools pinned at task start, with policy and input schema "
        "(null until the task started).",
    )
    milestones: list[MilestoneOut]
    paused: PauseState | None
    result: str | None
    error: str | None


class TaskPage(BaseModel):
    """One page of tasks, newest first."""

    items: list[TaskOut]
    next_cursor: str | None


class ResumeOut(BaseModel):
    """What the task accepted at its breakpoint."""

    task_id: UUID
    breakpoint_id: str
    action: ResumeAction


class CancelOut(BaseModel):
    """Acknowledgement of a cancellation request."""

    task_id: UUID
    status: TaskStatus
    cancel_requested: bool


class EventPage(BaseModel):
    """Stored events of a task after a sequence number."""

    items: list[AgentActivityEvent]
    next_after_seq: int = Field(description="Pass as `after_seq` to read on.")
    has_more: bool


class PromptCreate(_Input):
    """Body of `POST /v1/prompts`: every post makes a new version."""

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN)
    content: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    category: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN
    )


class PromptOut(BaseModel):
    """One version of a prompt."""

    name: str
    version: int
    content: str
    sha256: str
    category: str | None
    created_by: UUID | None
    created_at: datetime


class PromptPage(BaseModel):
    """One page of prompts (latest version of each name)."""

    items: list[PromptOut]
    next_cursor: str | None


class ComponentStatus(BaseModel):
    """Readiness of one dependency."""

    ok: bool
    detail: str = ""


class Readiness(BaseModel):
    """Body of `/readyz`."""

    ready: bool
    components: dict[str, ComponentStatus]


class Health(BaseModel):
    """Body of `/healthz`."""

    status: str = "ok"


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-compatible dict of a model."""
    return model.model_dump(mode="json")
