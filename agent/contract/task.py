"""The task workflow's public contract: input, result, resume update and progress query.

Pure Pydantic types, safe to import from workflow code (sandbox), activities and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, computed_field

from agent.contract.breakpoints import ResumeAction, allowed_actions
from agent.events.types import BreakpointKind, MilestoneStatus, TaskComplexity, TaskStatus

MILESTONE_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_MILESTONES = 100
DEFAULT_MAX_TOOL_ROUNDS = 8
MAX_TOOL_ROUNDS = 50


class Budget(BaseModel):
    """Spending limits of a task; None means unlimited."""

    max_cost_usd: float | None = Field(default=None, gt=0, le=10_000)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000_000)
    max_tool_calls: int | None = Field(default=None, gt=0, le=100_000)
    """Tool calls made (executed) over the whole task."""

    def merged(self, raised: Budget) -> Budget:
        """This budget with the limits a person set at a breakpoint.

        A limit `raised` leaves None stays as it is (None there means "unchanged", not
        "unlimited"); every limit it sets replaces this one.

        Args:
            raised: The budget of a resume decision.

        Returns:
            The merged budget.
        """
        return Budget(
            max_cost_usd=(
                raised.max_cost_usd if raised.max_cost_usd is not None else self.max_cost_usd
            ),
            max_tokens=raised.max_tokens if raised.max_tokens is not None else self.max_tokens,
            max_tool_calls=(
                raised.max_tool_calls if raised.max_tool_calls is not None else self.max_tool_calls
            ),
        )


class Totals(BaseModel):
    """Usage summed over every LLM call of a task."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False
    estimated: bool = False
    """Some of the usage was estimated because the provider reported none."""
    tool_calls: int = 0
    """Tool calls executed (rejected and denied calls are not counted)."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class MilestoneSpec(BaseModel):
    """One milestone of a plan, as the planner (or a person editing it) writes it."""

    key: str = Field(pattern=MILESTONE_KEY_PATTERN)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_MILESTONES)


class MilestoneChange(BaseModel):
    """An edit to an existing milestone; fields left None stay as they are."""

    key: str = Field(pattern=MILESTONE_KEY_PATTERN)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    depends_on: list[str] | None = Field(default=None, max_length=MAX_MILESTONES)


class PlanEdit(BaseModel):
    """Changes to a plan at a breakpoint; the result is validated like a generated plan."""

    add: list[MilestoneSpec] = Field(default_factory=list, max_length=MAX_MILESTONES)
    remove: list[str] = Field(default_factory=list, max_length=MAX_MILESTONES)
    change: list[MilestoneChange] = Field(default_factory=list, max_length=MAX_MILESTONES)


class TaskInput(BaseModel):
    """Input of `TaskWorkflow.run`: ids and options only; the goal stays in PostgreSQL."""

    task_id: UUID
    user_id: UUID
    session_id: UUID | None = None
    complexity: TaskComplexity | None = None
    breakpoints: list[BreakpointKind] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    max_parallel: int = Field(default=4, ge=1, le=32)
    max_attempts: int = Field(default=3, ge=1, le=10)
    breakpoint_timeout_seconds: float | None = Field(default=None, gt=0)
    breakpoint_default_action: ResumeAction = ResumeAction.CONTINUE
    llm_outage_tolerance_seconds: float | None = Field(default=None, gt=0)
    """How long an LLM call waits out a provider outage; None: the worker's setting."""
    tools_enabled: bool = False
    """The task may call tools (the API saw tool servers configured or tools requested);
    which ones is pinned by the workflow's first step."""
    max_tool_rounds: int = Field(default=DEFAULT_MAX_TOOL_ROUNDS, ge=1, le=MAX_TOOL_ROUNDS)
    """Model turns with tool calls per milestone attempt; the next turn must answer."""


class TaskResult(BaseModel):
    """Result of `TaskWorkflow.run`; the full summary text stays in PostgreSQL."""

    task_id: UUID
    status: TaskStatus
    failure_reason: str | None = None
    summary_preview: str = ""
    totals: Totals = Field(default_factory=Totals)
    milestones_passed: int = 0
    milestones_failed: int = 0
    milestones_skipped: int = 0


class ResumeRequest(BaseModel):
    """Argument of the `resume` update."""

    breakpoint_id: str = Field(min_length=1, max_length=255)
    action: ResumeAction
    edits: PlanEdit | None = None
    budget: Budget | None = None
    feedback: str | None = Field(default=None, max_length=20_000)
    arguments: dict[str, Any] | None = None
    """The new arguments of an `edit` at `before_tool` (checked against the tool's schema)."""
    user_id: UUID | None = None


class ResumeResult(BaseModel):
    """What the `resume` update accepted."""

    breakpoint_id: str
    action: ResumeAction


class ToolCallPause(BaseModel):
    """The tool call a `before_tool` breakpoint waits on."""

    id: UUID
    server: str
    tool: str
    arguments: str
    """The model's arguments as it wrote them (JSON text)."""


class PauseState(BaseModel):
    """Where a paused task waits."""

    breakpoint_id: str
    kind: BreakpointKind
    milestone_key: str | None = None
    reason: str = ""
    hit_at: datetime
    timeout_at: datetime | None = None
    default_action: ResumeAction | None = None
    tool_call: ToolCallPause | None = None
    """At `before_tool`: the call waiting for approval."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allowed_actions(self) -> list[ResumeAction]:
        """The resume actions that fit this breakpoint (clients offer these, nothing else)."""
        return list(allowed_actions(self.kind))


class MilestoneProgress(BaseModel):
    """One milestone's state in the progress query."""

    key: str
    title: str
    status: MilestoneStatus
    attempts: int = 0
    depends_on: list[str] = Field(default_factory=list)


class TaskProgress(BaseModel):
    """Result of the `progress` query."""

    task_id: UUID
    status: TaskStatus
    complexity: TaskComplexity | None = None
    milestones: list[MilestoneProgress] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    budget: Budget = Field(default_factory=Budget)
    paused: PauseState | None = None
    current_milestones: list[str] = Field(default_factory=list)
