"""The task workflow's public contract: input, result, resume update and progress query.

Pure Pydantic types, safe to import from workflow code (sandbox), activities and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, computed_field

from agent.contract.breakpoints import ResumeAction, allowed_actions
from agent.contract.spend import SpendWindow
from agent.events.types import (
    AgentRole,
    BreakpointKind,
    MilestoneStatus,
    TaskComplexity,
    TaskStatus,
)

MILESTONE_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_GOAL_CHARS = 20_000
"""The longest goal a task accepts (the API refuses longer ones, the CLI says so first)."""
MAX_REQUEST_BODY_BYTES = 1024 * 1024
"""The largest request body the API reads by default (`413` past it)."""
MAX_MILESTONES = 100
"""The largest plan a task accepts unless configured (`AGENT_MAX_PLAN_MILESTONES`)."""
PLAN_MILESTONES_CEILING = 10_000
"""The largest `AGENT_MAX_PLAN_MILESTONES` allowed: the structural bound of every plan."""
DEFAULT_HISTORY_MAX_EVENTS = 10_000
"""A run continues as new once its history nears this many events
(`AGENT_HISTORY_MAX_EVENTS`; Temporal warns at 10,240 and stops a run at 51,200)."""
MIN_HISTORY_MAX_EVENTS = 100
"""The smallest history bound a task accepts (a run must fit a few milestones)."""
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
    depends_on: list[str] = Field(default_factory=list, max_length=PLAN_MILESTONES_CEILING)


class MilestoneChange(BaseModel):
    """An edit to an existing milestone; fields left None stay as they are."""

    key: str = Field(pattern=MILESTONE_KEY_PATTERN)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    depends_on: list[str] | None = Field(default=None, max_length=PLAN_MILESTONES_CEILING)


class PlanEdit(BaseModel):
    """Changes to a plan at a breakpoint; the result is validated like a generated plan."""

    add: list[MilestoneSpec] = Field(default_factory=list, max_length=PLAN_MILESTONES_CEILING)
    remove: list[str] = Field(default_factory=list, max_length=PLAN_MILESTONES_CEILING)
    change: list[MilestoneChange] = Field(default_factory=list, max_length=PLAN_MILESTONES_CEILING)


class ModelChoice(BaseModel):
    """The model one role uses and its context budget."""

    model: str
    context_budget_tokens: int = Field(gt=0)


class MilestoneCarry(BaseModel):
    """One milestone's state as a continued run receives it (its texts stay in PostgreSQL)."""

    key: str
    title: str
    depends_on: list[str] = Field(default_factory=list)
    milestone_id: UUID
    status: MilestoneStatus = MilestoneStatus.PENDING
    attempts: int = 0


class TaskCarryOver(BaseModel):
    """The state a task's workflow hands to its next run when it continues as new.

    Only state, never outputs (they stay in PostgreSQL): the plan and milestone states in
    plan order, usage and budget, breakpoint counters, feedback, routes and pinned
    versions. A continued run skips start, classification and planning and resumes the
    milestone DAG where the previous run stopped.
    """

    run: int = Field(ge=1)
    """This run's place in the chain (the first run has no carry-over: run 0)."""
    complexity: TaskComplexity
    routes: dict[AgentRole, ModelChoice]
    prompt_versions: dict[str, int] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=list)
    milestones: list[MilestoneCarry] = Field(min_length=1)
    """The plan's milestones in plan order (the plan is rebuilt from them)."""
    compressed: dict[str, int] = Field(default_factory=dict)
    """Milestone key -> sequence number of its compressed context."""
    task_feedback: list[str] = Field(default_factory=list)
    milestone_feedback: dict[str, list[str]] = Field(default_factory=dict)
    totals: Totals = Field(default_factory=Totals)
    budget: Budget = Field(default_factory=Budget)
    breakpoint_count: int = 0
    """Breakpoints opened so far: ids stay unique across runs."""
    defaulted_places: list[str] = Field(default_factory=list)
    call_prompt_tokens: dict[AgentRole, int] = Field(default_factory=dict)
    call_usd_per_token: dict[str, float] = Field(default_factory=dict)
    milestone_events: int = 0
    """The most history events one milestone took so far (the headroom kept per run)."""
    search_attributes: dict[str, str | bool | float | None] = Field(default_factory=dict)
    spend_window: SpendWindow | None = None
    """The user's daily window the task last called in, with its usage before it."""
    """Search attribute values as last upserted (a continued run keeps them)."""


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
    max_plan_milestones: int = Field(default=MAX_MILESTONES, ge=1, le=PLAN_MILESTONES_CEILING)
    """The largest plan this task accepts (`AGENT_MAX_PLAN_MILESTONES` when it was created)."""
    history_max_events: int = Field(default=DEFAULT_HISTORY_MAX_EVENTS, ge=MIN_HISTORY_MAX_EVENTS)
    """A run continues as new before its history passes this (`AGENT_HISTORY_MAX_EVENTS`)."""
    carry_over: TaskCarryOver | None = None
    """Set on a continued run: the state the previous run handed over."""


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
    scope: str | None = None
    """At `budget_exhausted`: `user_daily` when the user's daily spend limit, not the
    task's budget, stopped the task (it resumes by itself at `resets_at`)."""
    resets_at: datetime | None = None
    """With `scope` `user_daily`: when the user's daily window resets (also `timeout_at`)."""

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
