"""Event and status types shared by workflows, activities and the API."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    """Every kind of event an agent task emits."""

    TASK_STARTED = "TASK_STARTED"
    TASK_PROGRESS = "TASK_PROGRESS"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_FAILED = "TASK_FAILED"
    TASK_PAUSED = "TASK_PAUSED"
    TASK_CANCELLED = "TASK_CANCELLED"
    MILESTONE_STATUS_CHANGED = "MILESTONE_STATUS_CHANGED"
    MILESTONE_COMPLETED = "MILESTONE_COMPLETED"
    MILESTONE_FAILED = "MILESTONE_FAILED"
    MILESTONE_RETRY = "MILESTONE_RETRY"
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_COMPLETED = "AGENT_COMPLETED"
    AGENT_FAILED = "AGENT_FAILED"
    LLM_CHUNK = "LLM_CHUNK"
    LLM_COMPLETE = "LLM_COMPLETE"
    CONTEXT_COMPRESSED = "CONTEXT_COMPRESSED"
    BREAKPOINT_HIT = "BREAKPOINT_HIT"
    BREAKPOINT_RESUMED = "BREAKPOINT_RESUMED"
    LLM_WAITING = "LLM_WAITING"
    """An LLM call started waiting out a provider outage or rate limit (once per call)."""
    LLM_RECOVERED = "LLM_RECOVERED"
    """The provider answered again after an `LLM_WAITING` (once per call)."""
    TOOL_CALL_STARTED = "TOOL_CALL_STARTED"
    """A tool call began (or was found invalid: then `TOOL_CALL_FAILED` follows at once)."""
    TOOL_CALL_COMPLETED = "TOOL_CALL_COMPLETED"
    TOOL_CALL_FAILED = "TOOL_CALL_FAILED"
    """A tool call was rejected, denied, failed, or lost; the model gets an error result."""


EPHEMERAL_EVENT_TYPES: frozenset[EventType] = frozenset({EventType.LLM_CHUNK})
"""Event types relayed live but never stored (they carry no sequence number)."""


class AgentStatus(StrEnum):
    """Status of one agent (planner, worker, verifier, ...) run."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"


class MilestoneStatus(StrEnum):
    """Status of a milestone; `passed`, not `completed`, matches the backend exactly."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class TaskStatus(StrEnum):
    """Lifecycle of a task."""

    PENDING = "pending"
    QUEUED = "queued"
    """Accepted, waiting for one of its user's running-task slots (see `AdmissionWorkflow`)."""
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the task can no longer change."""
        return self in {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}


class TaskComplexity(StrEnum):
    """How demanding a task is; drives model routing."""

    TRIVIAL = "trivial"
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    CONTEXT_HEAVY = "context_heavy"


class AgentRole(StrEnum):
    """The agents a task uses, each routed to a model."""

    PLANNER = "planner"
    WORKER = "worker"
    VERIFIER = "verifier"
    SUMMARISER = "summariser"
    COMPRESSOR = "compressor"
    CLASSIFIER = "classifier"


class BreakpointKind(StrEnum):
    """Where a task may pause for a person."""

    AFTER_PLAN = "after_plan"
    BEFORE_MILESTONE = "before_milestone"
    AFTER_MILESTONE = "after_milestone"
    ON_FAILURE = "on_failure"
    BUDGET_EXHAUSTED = "budget_exhausted"
    BEFORE_TOOL = "before_tool"
    """A tool call waits for approval: its tool's policy asks for it, or the task lists
    `before_tool` in its breakpoints (then every call does)."""


EventStatus = AgentStatus | MilestoneStatus | TaskStatus


class AgentActivityEvent(BaseModel):
    """One thing an agent task did, as stored and as sent to clients.

    `sequence_number` is the per-task, gapless position of a stored event; ephemeral
    events (`LLM_CHUNK`) carry `None`.
    """

    model_config = ConfigDict(frozen=True)

    type: EventType
    session_id: UUID | None = None
    task_id: UUID
    milestone_id: UUID | None = None
    sequence_number: int | None = None
    agent: AgentRole | None = None
    status: EventStatus | None = None
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
