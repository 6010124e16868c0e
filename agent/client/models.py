"""Response bodies as a client reads them: unknown fields are ignored (newer servers).

Shared contract types (budgets, totals, pause state, plan edits) come from
`agent.contract.task`, the workflow's public contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from agent.contract.breakpoints import ResumeAction
from agent.contract.protocol import MessageKind
from agent.contract.task import Budget, PauseState, Totals
from agent.contract.tools import ToolSpec
from agent.events.types import (
    AgentActivityEvent,
    BreakpointKind,
    MilestoneStatus,
    TaskComplexity,
    TaskStatus,
)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MilestoneOut(_Response):
    """One milestone of a task."""

    id: UUID
    key: str
    title: str
    description: str = ""
    depends_on: list[str] = Field(default_factory=list)
    position: int = 0
    status: MilestoneStatus
    attempts: int = 0
    output: str | None = None
    feedback: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TaskOut(_Response):
    """A task as listed."""

    id: UUID
    session_id: UUID | None = None
    goal: str
    status: TaskStatus
    complexity: TaskComplexity | None = None
    workflow_id: str
    breakpoints: list[BreakpointKind] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    totals: Totals = Field(default_factory=Totals)
    failure_reason: str | None = None
    last_event_seq: int = 0
    created_at: datetime
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events_pruned_at: datetime | None = None
    """Set once the task's events and outputs were pruned (its totals stay)."""
    queue_position: int | None = None


class TaskDetail(TaskOut):
    """A task with its plan, result and pause state."""

    milestones: list[MilestoneOut] = Field(default_factory=list)
    tools_requested: list[str] | None = None
    tools: list[ToolSpec] | None = None
    """The tools pinned at task start (None until then)."""
    paused: PauseState | None = None
    result: str | None = None
    error: str | None = None


class TaskPage(_Response):
    """One page of tasks, newest first."""

    items: list[TaskOut]
    next_cursor: str | None = None


class EventPage(_Response):
    """Stored events after a sequence number."""

    items: list[AgentActivityEvent]
    next_after_seq: int
    has_more: bool


class ResumeOut(_Response):
    """What the task accepted at its breakpoint."""

    task_id: UUID
    breakpoint_id: str
    action: ResumeAction


class CancelOut(_Response):
    """Acknowledgement of a cancellation request."""

    task_id: UUID
    status: TaskStatus
    cancel_requested: bool


class StreamMessage(_Response):
    """One message of the event socket.

    `event` for stored events (`cursor` = sequence number) and ephemeral ones (no
    cursor); `caught_up` marks the end of the backfill (`cursor` = last stored seq).
    """

    kind: MessageKind
    cursor: int | None = None
    event: AgentActivityEvent | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-compatible form (the `--json` output line)."""
        return self.model_dump(mode="json", exclude_none=True)
