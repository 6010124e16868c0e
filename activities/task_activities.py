"""Task state activities: each state change and its events in one transaction.

Every method is idempotent: state updates are absolute (set, not add) and events carry
idempotency keys, so a retry after a crash (even after the commit) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import draft, task_not_found
from activities.event_text import decision_text, result_preview
from activities.models import (
    DecisionInput,
    DecisionOutput,
    FinishInput,
    MilestoneMarkInput,
    PauseInput,
    StartTaskInput,
    StartTaskOutput,
)
from activities.progress import model_routes, progress_draft
from activities.tools import DecidedToolCall, apply_tool_decision
from agent.config import Settings
from agent.contract.errors import WorkflowErrorType
from agent.contract.plan import Plan, PlanValidationError, apply_edits
from agent.contract.task import PLAN_MILESTONES_CEILING, Budget, MilestoneSpec, PlanEdit
from agent.db.models import Milestone
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, TaskComplexity, TaskStatus
from agent.llm.routing import ModelRouter
from agent.observability.tools import count_tool_call
from agent.prompts.cache import PromptCache
from agent.prompts.defaults import DEFAULT_PROMPTS, prompt_name
from agent.repositories.decisions import BreakpointDecisionRepository
from agent.repositories.errors import RecordNotFoundError
from agent.repositories.events import EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.prompts import PromptRepository
from agent.repositories.tasks import TaskRepository

logger = structlog.get_logger(__name__)

ACTIVE_STATUSES = frozenset(
    {TaskStatus.QUEUED, TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED}
)
"""A task in one of these may still change status; terminal ones never do."""

_FINISH_EVENTS: dict[TaskStatus, EventType] = {
    TaskStatus.COMPLETED: EventType.TASK_COMPLETED,
    TaskStatus.FAILED: EventType.TASK_FAILED,
    TaskStatus.CANCELLED: EventType.TASK_CANCELLED,
}


def _edited_plan(rows: Sequence[Milestone], edits: PlanEdit) -> Plan:
    """The stored plan with a person's edits applied, by the rules the workflow used.

    The workflow already validated the edit against its milestone statuses (the
    authority on what is locked), so only the edit itself is applied here.

    Raises:
        ApplicationError: Non-retryable `InvalidPlanEdit` when the edit does not apply to
            the stored plan (it and the workflow's plan disagree: retrying cannot help).
    """
    stored = Plan.model_construct(
        milestones=[
            MilestoneSpec(
                key=row.key,
                title=row.title,
                description=row.description,
                depends_on=list(row.depends_on),
            )
            for row in rows
        ]
    )
    try:
        # The workflow checked the edit against the task's plan limit already.
        return apply_edits(stored, edits, max_milestones=PLAN_MILESTONES_CEILING)
    except PlanValidationError as exc:
        raise ApplicationError(
            f"the plan edit does not apply to the stored plan: {exc}",
            type=WorkflowErrorType.INVALID_PLAN_EDIT,
            non_retryable=True,
        ) from exc


class TaskActivities:
    """Marks a task running, paused, resumed, finished; records progress and decisions."""

    def __init__(
        self,
        session_manager: DatabaseSessionManager,
        settings: Settings,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        """Inject dependencies.

        Args:
            session_manager: PostgreSQL sessions.
            settings: Model routing configuration.
            prompt_cache: Optional Redis cache of prompt versions.
        """
        self._db = session_manager
        self._router = ModelRouter(settings)
        self._prompt_cache = prompt_cache

    @activity.defn(name="start_task")
    async def start_task(self, data: StartTaskInput) -> StartTaskOutput:
        """Mark the task running, pin the prompt versions, emit `TASK_STARTED`.

        Args:
            data: The task and the complexity the user gave, if any.

        Returns:
            Pinned prompt versions (role name -> version), the stored complexity and the
            model routes of the given complexity (of the trivial one when unknown, for
            the classifier).
        """
        async with self._db.session() as session, session.begin():
            tasks = TaskRepository(session)
            task = await tasks.get_by_id(data.task_id)
            if task is None:
                raise task_not_found(data.task_id)
            await _lock_for_append(session, data.task_id, task.session_id)
            versions = dict(task.prompt_versions or {})
            if not versions:
                prompts = PromptRepository(session, self._prompt_cache)
                for role in DEFAULT_PROMPTS:
                    latest = await prompts.get_by_name(prompt_name(role))
                    if latest is not None:
                        versions[prompt_name(role)] = latest.version
            await tasks.set_status(
                data.task_id,
                TaskStatus.RUNNING,
                only_from=ACTIVE_STATUSES,
                prompt_versions=versions,
            )
            await EventRepository(session).append(
                [
                    draft(
                        0,
                        EventType.TASK_STARTED,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        status=TaskStatus.RUNNING,
                        message="Task started",
                        details={"prompt_versions": versions},
                    )
                ]
            )
            complexity = TaskComplexity(task.complexity) if task.complexity else None
        logger.info("task_started", task_id=str(data.task_id), prompt_versions=versions)
        routes = model_routes(self._router, data.complexity or TaskComplexity.TRIVIAL)
        return StartTaskOutput(prompt_versions=versions, complexity=complexity, routes=routes)

    @activity.defn(name="pause_task")
    async def pause_task(self, data: PauseInput) -> None:
        """Mark the task paused at a breakpoint and emit `BREAKPOINT_HIT` and `TASK_PAUSED`."""
        pause = data.pause
        details = pause.model_dump(mode="json")
        async with self._db.session() as session, session.begin():
            await _lock_for_append(session, data.task_id, data.session_id)
            await TaskRepository(session).set_status(
                data.task_id,
                TaskStatus.PAUSED,
                only_from=ACTIVE_STATUSES,
                pause_state=details,
            )
            await EventRepository(session).append(
                [
                    draft(
                        0,
                        EventType.BREAKPOINT_HIT,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_id=data.milestone_id,
                        status=TaskStatus.PAUSED,
                        message=f"Breakpoint {pause.kind.value}: {pause.reason}",
                        details=details,
                    ),
                    draft(
                        1,
                        EventType.TASK_PAUSED,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_id=data.milestone_id,
                        status=TaskStatus.PAUSED,
                        message=f"Waiting for a person at {pause.breakpoint_id}",
                        details={
                            "breakpoint_id": pause.breakpoint_id,
                            "totals": data.totals.model_dump(mode="json"),
                        },
                    ),
                ]
            )

    @activity.defn(name="record_decision")
    async def record_decision(self, data: DecisionInput) -> DecisionOutput:
        """Record a resume decision (audit), apply its plan edit, emit `BREAKPOINT_RESUMED`.

        Returns:
            Milestone ids by key after the edit.
        """
        request = data.request
        pause = data.pause
        async with self._db.session() as session, session.begin():
            await _lock_for_append(session, data.task_id, data.session_id)
            recorded = await BreakpointDecisionRepository(session).record(
                task_id=data.task_id,
                breakpoint_id=pause.breakpoint_id,
                kind=pause.kind.value,
                action=request.action.value,
                edits=request.edits.model_dump(mode="json") if request.edits else None,
                feedback=request.feedback,
                new_budget=request.budget.model_dump(mode="json") if request.budget else None,
                user_id=request.user_id,
                decided_at=data.decided_at,
            )
            milestones = MilestoneRepository(session)
            # The decision, the edit and the budget commit together: a decision already
            # recorded means a former attempt applied them (edits are not idempotent).
            if request.edits is not None and recorded.created:
                rows = await milestones.list_for_task(data.task_id)
                edited = _edited_plan(rows, request.edits)
                if edited.keys != data.plan_keys:
                    logger.warning(
                        "decision_plan_differs_from_workflow",
                        task_id=str(data.task_id),
                        activity_keys=edited.keys,
                        workflow_keys=data.plan_keys,
                    )
                await milestones.replace_plan(data.task_id, edited.milestones)
            tasks = TaskRepository(session)
            budget_fields: dict[str, object] = {}
            if request.budget is not None and recorded.created:
                task = await tasks.get_by_id(data.task_id)
                if task is None:
                    raise task_not_found(data.task_id)
                stored = Budget(
                    max_cost_usd=task.max_cost_usd,
                    max_tokens=task.max_tokens,
                    max_tool_calls=task.max_tool_calls,
                )
                budget_fields = stored.merged(request.budget).model_dump()
            await tasks.set_status(
                data.task_id,
                TaskStatus.RUNNING,
                only_from=ACTIVE_STATUSES,
                pause_state=None,
                **budget_fields,
            )
            await EventRepository(session).append(
                [
                    draft(
                        0,
                        EventType.BREAKPOINT_RESUMED,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_id=data.milestone_id,
                        status=TaskStatus.RUNNING,
                        message=f"Resumed from {pause.breakpoint_id}: {decision_text(request)}",
                        details={
                            "breakpoint_id": pause.breakpoint_id,
                            "kind": pause.kind.value,
                            "action": request.action.value,
                            "user_id": str(request.user_id) if request.user_id else None,
                            "timed_out": data.timed_out,
                            "edits": (
                                request.edits.model_dump(mode="json") if request.edits else None
                            ),
                            "budget": (
                                request.budget.model_dump(mode="json") if request.budget else None
                            ),
                            "feedback": request.feedback,
                            "decided_at": data.decided_at.isoformat(),
                        },
                    )
                ]
            )
            decided: DecidedToolCall | None = None
            if pause.tool_call is not None and recorded.created:
                decided = await apply_tool_decision(session, data)
            ids = {m.key: m.id for m in await milestones.list_for_task(data.task_id)}
        if decided is not None:
            count_tool_call(decided.server, decided.tool, decided.status)
        logger.info(
            "breakpoint_resumed",
            task_id=str(data.task_id),
            breakpoint_id=pause.breakpoint_id,
            action=request.action.value,
        )
        return DecisionOutput(milestone_ids=ids)

    @activity.defn(name="mark_milestone")
    async def mark_milestone(self, data: MilestoneMarkInput) -> None:
        """Apply a milestone transition the workflow decided (skip, reopen for a retry)."""
        async with self._db.session() as session, session.begin():
            await MilestoneRepository(session).set_status(
                data.task_id, data.milestone_key, data.status
            )
            drafts = [
                draft(
                    0,
                    EventType.MILESTONE_STATUS_CHANGED,
                    task_id=data.task_id,
                    session_id=data.session_id,
                    milestone_id=data.milestone_id,
                    status=data.status,
                    message=f"{data.milestone_key}: {data.status.value} ({data.reason})",
                    details={"key": data.milestone_key, "reason": data.reason},
                )
            ]
            if data.report_progress:
                drafts.append(
                    await progress_draft(
                        session,
                        1,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        milestone_key=data.milestone_key,
                    )
                )
            await EventRepository(session).append(drafts)

    @activity.defn(name="finish_task")
    async def finish_task(self, data: FinishInput) -> None:
        """Mark the task completed, failed or cancelled with its terminal event."""
        event_type = _FINISH_EVENTS[data.status]
        async with self._db.session() as session, session.begin():
            await _lock_for_append(session, data.task_id, data.session_id)
            tasks = TaskRepository(session)
            fields: dict[str, object] = {"pause_state": None}
            if data.failure_reason is not None:
                fields["failure_reason"] = data.failure_reason
            if data.error is not None:
                fields["error"] = data.error
            await tasks.set_status(data.task_id, data.status, only_from=ACTIVE_STATUSES, **fields)
            task = await tasks.get_by_id(data.task_id)
            result = task.result if task is not None else None
            message = {
                TaskStatus.COMPLETED: "Task completed",
                TaskStatus.FAILED: f"Task failed: {data.failure_reason}",
                TaskStatus.CANCELLED: f"Task cancelled: {data.failure_reason}",
            }[data.status]
            await EventRepository(session).append(
                [
                    draft(
                        0,
                        event_type,
                        task_id=data.task_id,
                        session_id=data.session_id,
                        status=data.status,
                        message=message,
                        details={
                            "reason": data.failure_reason,
                            "error": data.error,
                            "totals": data.totals.model_dump(mode="json"),
                            "counts": {k.value: v for k, v in data.counts.items()},
                            # Clients show the outcome from the terminal event alone; the
                            # whole result is one GET away.
                            "result_preview": result_preview(result),
                            "result_chars": len(result) if result else 0,
                            "task_url": f"/v1/tasks/{data.task_id}",
                        },
                    )
                ]
            )
        logger.info(
            "task_finished",
            task_id=str(data.task_id),
            status=data.status.value,
            reason=data.failure_reason,
        )


async def _lock_for_append(session: AsyncSession, task_id: UUID, session_id: UUID | None) -> None:
    """Take the append's locks (session, then task row) before this transaction writes.

    These activities update the task row before appending their events; taking the row
    lock first, from the status update, reversed the one lock order every other writer
    uses, so a writer holding the session lock could deadlock with them.
    """
    try:
        await EventRepository(session).lock_task(task_id, [session_id])
    except RecordNotFoundError as exc:
        raise task_not_found(task_id) from exc
