"""`TaskWorkflow`: plan a goal into milestones, run them as a DAG, verify, summarise.

Pure orchestration: every side effect is an activity; the workflow carries ids, statuses,
usage and short previews only. Steps (docs/architecture.md): start (with the model routes) ->
classify (when no complexity was given; returns the routes for it) -> plan ->
`after_plan` -> milestone DAG (`workflows.dag`) -> summarise -> finish. The DB-only steps
are short and idempotent; `start_task` and `finish_task` run as local activities (see
`workflows.state.local_db_options`).

The class is assembled from layers, one concern each: `state` (fields, pure helpers),
`ui` (search attributes, details table, summaries), `breakpoints`, `budget`, `dag`.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.dag import COMPRESSION_TARGET_RATIO, WorkflowDag
from workflows.state import (
    EndTaskError,
    FailureReason,
    MilestoneState,
    db_options,
    error_text,
    local_db_options,
)
from workflows.ui import DETAILS_MAX_ROWS

with workflow.unsafe.imports_passed_through():
    from activities.agent_activities import AgentActivities
    from activities.models import (
        ClassifyInput,
        ClassifyOutput,
        FinishInput,
        PlanInput,
        PlanOutput,
        StartTaskInput,
        StartTaskOutput,
        SummariseInput,
    )
    from activities.task_activities import TaskActivities
    from agent.contract.breakpoints import ResumeAction
    from agent.contract.plan import validate_plan
    from agent.contract.task import (
        MilestoneProgress,
        MilestoneSpec,
        ResumeRequest,
        ResumeResult,
        TaskInput,
        TaskProgress,
        TaskResult,
    )
    from agent.events.types import (
        AgentRole,
        BreakpointKind,
        MilestoneStatus,
        TaskComplexity,
        TaskStatus,
    )
    from agent.temporal import (
        AWAITING_HUMAN,
        COMPLEXITY,
        COST_USD,
        CURRENT_MILESTONE,
        TASK_STATUS,
        USER_ID,
    )

__all__ = [
    "COMPRESSION_TARGET_RATIO",
    "DETAILS_MAX_ROWS",
    "MAX_PLAN_ATTEMPTS",
    "FailureReason",
    "TaskWorkflow",
]

START_TASK_LOCAL_PATCH = "start-task-local-activity"
"""`workflow.patched` id: `start_task` runs as a local activity (saves a server round trip)."""

MAX_PLAN_ATTEMPTS = 3
"""Planner answers that fail validation are asked again this many times in all."""


@workflow.defn
class TaskWorkflow(WorkflowDag):
    """Durable agent task. Workflow id: `task-{task_id}`.

    Update `resume(ResumeRequest) -> ResumeResult` (validated), query
    `progress() -> TaskProgress`.
    """

    @workflow.run
    async def run(self, task: TaskInput) -> TaskResult:
        """Run the task to a terminal state and return its result.

        Args:
            task: Ids and options; the goal itself stays in PostgreSQL.

        Returns:
            Status, reason, totals, counts and a summary preview.
        """
        self._input = task
        self._budget = task.budget
        self._complexity = task.complexity
        self._status = TaskStatus.RUNNING
        summary_preview = ""
        try:
            self._upsert(
                {
                    TASK_STATUS.name: TaskStatus.RUNNING.value,
                    USER_ID.name: str(task.user_id),
                    AWAITING_HUMAN.name: False,
                    COST_USD.name: 0.0,
                }
            )
            await self._start_and_route()
            await self._make_plan()
            if BreakpointKind.AFTER_PLAN in task.breakpoints:
                await self._after_plan()
            await self._run_dag()
            if any(m.status == MilestoneStatus.FAILED for m in self._milestones.values()):
                raise EndTaskError(TaskStatus.FAILED, FailureReason.MILESTONES_FAILED)
            summary = await self._llm(
                AgentActivities.summarise,
                SummariseInput(**self._call_base(AgentRole.SUMMARISER)),
                summary=self._summary("summarise", AgentRole.SUMMARISER),
            )
            summary_preview = summary.summary_preview
            stop = EndTaskError(TaskStatus.COMPLETED)
        except EndTaskError as exc:
            stop = exc
        except asyncio.CancelledError:
            await self._finish_cancelled()
            raise
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                # The cancel reached a running activity first; it surfaces as that
                # activity's failure but is still the user's cancellation.
                await self._finish_cancelled()
                raise asyncio.CancelledError from exc
            stop = EndTaskError(TaskStatus.FAILED, FailureReason.ACTIVITY_FAILED, error_text(exc))
        await self._finish(stop)
        # Updates accepted while finishing must complete before the run returns.
        await workflow.wait_condition(workflow.all_handlers_finished)
        counts = self._counts()
        return TaskResult(
            task_id=task.task_id,
            status=stop.status,
            failure_reason=stop.reason,
            summary_preview=summary_preview,
            totals=self._totals,
            milestones_passed=counts.get(MilestoneStatus.PASSED, 0),
            milestones_failed=counts.get(MilestoneStatus.FAILED, 0),
            milestones_skipped=counts.get(MilestoneStatus.SKIPPED, 0),
        )

    @workflow.update
    async def resume(self, request: ResumeRequest) -> ResumeResult:
        """Resume the task from the breakpoint it waits at.

        Args:
            request: Breakpoint id, action, optional plan edits, budget and feedback.

        Returns:
            The accepted breakpoint id and action.
        """
        self._decision = request
        # Answer once the decision is applied and recorded: the caller then sees the task
        # running again (or paused at its next breakpoint), never the stale pause.
        await workflow.wait_condition(lambda: request.breakpoint_id in self._resolved)
        return ResumeResult(breakpoint_id=request.breakpoint_id, action=request.action)

    @resume.validator
    def validate_resume(self, request: ResumeRequest) -> None:
        """Reject a resume that does not fit; a rejected update leaves no history.

        Raises:
            ApplicationError: Task not paused, wrong breakpoint id, an action that does
                not fit the breakpoint, or an invalid plan edit.
        """
        self._check_resume(request)

    @workflow.query
    def progress(self) -> TaskProgress:
        """Status, milestone states, totals, budget and where the task is paused."""
        assert self._input is not None
        return TaskProgress(
            task_id=self._input.task_id,
            status=self._status,
            complexity=self._complexity,
            milestones=[
                MilestoneProgress(
                    key=m.key,
                    title=m.title,
                    status=m.status,
                    attempts=m.attempts,
                    depends_on=list(m.depends_on),
                )
                for m in self._ordered()
            ],
            totals=self._totals,
            budget=self._budget,
            paused=self._pause,
            current_milestones=[k for k in self._plan_keys() if k in self._running],
        )

    # ------------------------------------------------------------------ steps

    async def _start_and_route(self) -> None:
        """Mark the task running; classify it when needed; fix every role's model."""
        task = self._task
        start_input = StartTaskInput(
            task_id=task.task_id, session_id=task.session_id, complexity=self._complexity
        )
        started: StartTaskOutput
        if workflow.patched(START_TASK_LOCAL_PATCH):
            started = await workflow.execute_local_activity_method(
                TaskActivities.start_task, start_input, summary="start task", **local_db_options()
            )
            if workflow.cancellation_reason() is not None:
                # A cancel that landed while it ran is erased by its completion.
                raise asyncio.CancelledError
        else:
            started = await workflow.execute_activity_method(
                TaskActivities.start_task, start_input, summary="start task", **db_options()
            )
        self._prompt_versions = started.prompt_versions
        # Without a complexity these are the trivial level's routes: the cheapest model
        # classifies, then the classifier's answer carries the routes of its verdict.
        self._routes = dict(started.routes)
        if self._complexity is None:
            choice = self._routes[AgentRole.CLASSIFIER]
            out: ClassifyOutput = await self._llm(
                AgentActivities.classify,
                ClassifyInput(**self._call_base(AgentRole.CLASSIFIER)),
                summary=f"classify · {choice.model}",
            )
            # The activity always answers both; the fallbacks only keep the types honest.
            self._complexity = out.complexity or TaskComplexity.MODERATE
            self._routes = dict(out.routes) or self._routes
        self._upsert({COMPLEXITY.name: self._complexity.value})

    async def _make_plan(self, human_feedback: str | None = None) -> None:
        error: str | None = None
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            previous_error = error
            out: PlanOutput = await self._llm(
                AgentActivities.plan,
                PlanInput(
                    **self._call_base(AgentRole.PLANNER),
                    attempt=attempt,
                    feedback=previous_error,
                    human_feedback=human_feedback,
                ),
                summary=self._summary("plan", AgentRole.PLANNER, attempt),
            )
            if out.valid:
                self._plan = validate_plan(
                    MilestoneSpec(key=m.key, title=m.title, depends_on=m.depends_on)
                    for m in out.milestones
                )
                self._milestones = {
                    m.key: MilestoneState(
                        key=m.key,
                        title=m.title,
                        depends_on=m.depends_on,
                        milestone_id=m.milestone_id,
                    )
                    for m in out.milestones
                }
                self._compressed.clear()
                self._refresh_details()
                return
            error = out.error or "invalid plan"
        raise EndTaskError(TaskStatus.FAILED, FailureReason.INVALID_PLAN, error)

    async def _after_plan(self) -> None:
        while True:
            decision = await self._human(
                BreakpointKind.AFTER_PLAN, None, f"plan of {len(self._milestones)} milestones"
            )
            if decision.action == ResumeAction.RETRY:
                await self._make_plan(decision.feedback)
                continue
            return

    async def _finish_cancelled(self) -> None:
        self._status = TaskStatus.CANCELLED
        await self._finish(EndTaskError(TaskStatus.CANCELLED, FailureReason.CANCELLED))

    async def _finish(self, stop: EndTaskError) -> None:
        self._stop = stop
        self._status = stop.status
        self._pause = None
        self._upsert(
            {
                TASK_STATUS.name: stop.status.value,
                AWAITING_HUMAN.name: False,
                COST_USD.name: round(self._totals.cost_usd, 6),
                CURRENT_MILESTONE.name: None,
            }
        )
        self._refresh_details()
        await workflow.execute_local_activity_method(
            TaskActivities.finish_task,
            FinishInput(
                task_id=self._task.task_id,
                session_id=self._task.session_id,
                status=stop.status,
                failure_reason=stop.reason,
                error=stop.error,
                totals=self._totals,
                counts=self._counts(),
            ),
            summary=f"finish · {stop.status.value}",
            **local_db_options(),
        )
