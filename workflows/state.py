"""The task workflow's state and the small pure helpers every part of it reads.

`TaskWorkflow` is assembled from layers, each a class adding one concern on top of the
previous one (`state` -> `ui` -> `breakpoints` -> `budget` -> `dag` -> `task_workflow`);
all of them are deterministic workflow code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.models import ModelChoice
    from activities.policies import (
        DB_LOCAL_RETRY_THRESHOLD,
        DB_RETRY_POLICY,
        DB_START_TO_CLOSE_TIMEOUT,
        LLM_HEARTBEAT_TIMEOUT,
        LLM_RETRY_POLICY,
        LLM_START_TO_CLOSE_TIMEOUT,
    )
    from agent.contract.plan import Plan
    from agent.contract.task import Budget, PauseState, ResumeRequest, TaskInput, Totals
    from agent.events.types import AgentRole, MilestoneStatus, TaskComplexity, TaskStatus


class FailureReason(StrEnum):
    """Stable `failure_reason` of a task that did not complete."""

    BUDGET_EXCEEDED = "budget_exceeded"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    MILESTONES_FAILED = "milestones_failed"
    INVALID_PLAN = "invalid_plan"
    CONTEXT_TOO_LARGE = "context_too_large"
    ACTIVITY_FAILED = "activity_failed"


@dataclass
class EndTaskError(Exception):
    """Raised inside the workflow to end the task cleanly with a status and reason."""

    status: TaskStatus
    reason: FailureReason | None = None
    error: str | None = None


@dataclass
class MilestoneState:
    """What the workflow tracks of one milestone (its texts stay in PostgreSQL)."""

    key: str
    title: str
    depends_on: list[str]
    milestone_id: UUID
    status: MilestoneStatus = MilestoneStatus.PENDING
    attempts: int = 0


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


def llm_options() -> dict[str, Any]:
    """Options of the LLM activities."""
    return {
        "start_to_close_timeout": LLM_START_TO_CLOSE_TIMEOUT,
        "heartbeat_timeout": LLM_HEARTBEAT_TIMEOUT,
        "retry_policy": LLM_RETRY_POLICY,
        # Wait for the activity to close its stream and record partial usage, so the
        # cancellation event is written after the agent's last event.
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


def error_text(exc: BaseException) -> str:
    """An exception and its causes, shortened for the task's `error` column."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        parts.append(str(current))
        current = current.__cause__
    return " <- ".join(p for p in parts if p)[:2000]


class WorkflowState:
    """Every field of a running task workflow, plus read-only helpers over them."""

    def __init__(self) -> None:
        """Start empty; `run` fills in the task."""
        self._input: TaskInput | None = None
        self._status = TaskStatus.PENDING
        self._complexity: TaskComplexity | None = None
        self._routes: dict[AgentRole, ModelChoice] = {}
        self._prompt_versions: dict[str, int] = {}
        self._plan: Plan | None = None
        self._milestones: dict[str, MilestoneState] = {}
        self._totals = Totals()
        self._budget = Budget()
        self._pause: PauseState | None = None
        self._decision: ResumeRequest | None = None
        self._pause_lock = asyncio.Lock()
        self._breakpoint_count = 0
        self._running: set[str] = set()
        self._task_feedback: list[str] = []
        self._milestone_feedback: dict[str, list[str]] = {}
        self._compressed: dict[str, int] = {}
        self._stop: EndTaskError | None = None
        self._search_attributes: dict[str, Any] = {}
        self._pause_epoch = 0
        self._resolved: set[str] = set()
        self._budget_epoch = 0

    @property
    def _task(self) -> TaskInput:
        assert self._input is not None
        return self._input

    def _call_base(self, role: AgentRole) -> dict[str, Any]:
        return {
            "task_id": self._task.task_id,
            "session_id": self._task.session_id,
            "model": self._routes[role].model,
            "prompt_version": self._prompt_versions.get(role.value),
        }

    def _feedback_for(self, key: str) -> str | None:
        notes = [*self._task_feedback, *self._milestone_feedback.get(key, [])]
        return "\n\n".join(notes) if notes else None

    def _plan_keys(self) -> list[str]:
        return self._plan.keys if self._plan is not None else []

    def _ordered(self) -> list[MilestoneState]:
        return [self._milestones[k] for k in self._plan_keys() if k in self._milestones]

    def _statuses(self) -> dict[str, MilestoneStatus]:
        return {k: m.status for k, m in self._milestones.items()}

    def _counts(self) -> dict[MilestoneStatus, int]:
        counts = dict.fromkeys(MilestoneStatus, 0)
        for milestone in self._milestones.values():
            counts[milestone.status] += 1
        return counts

    def _label(self, key: str) -> str:
        keys = self._plan_keys()
        position = keys.index(key) + 1 if key in keys else 0
        return f"M{position}/{len(keys)}"
