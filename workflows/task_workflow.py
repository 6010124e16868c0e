"""`TaskWorkflow`: plan a goal into milestones, run them as a DAG, verify, summarise.

Pure orchestration: every side effect is an activity; the workflow carries ids, statuses,
usage and short previews only. Steps (docs/architecture.md): start (with the model
routes) -> classify (when no complexity was given; returns the routes for it) -> plan ->
`after_plan` -> milestone DAG (each milestone: `before_milestone` -> execute, compressing
its context when too large -> verify -> retry with the verifier's feedback ->
`after_milestone` / `on_failure`) -> summarise -> finish. The DB-only steps are short and
idempotent; `start_task` and `finish_task` run as local activities (see
`workflows.options.local_db_options`).

This module is longer than most on purpose: it is the one workflow class, and it reads top
to bottom in the order a task runs (`__init__` lists all its state). Every pure
computation lives in a helper module it calls: `dag` (milestone bookkeeping, scheduling),
`budget` (budget arithmetic), `breakpoints` (resume rules, pause states), `ui` (search
attribute values, details table, activity summaries), `outcome` (failure reasons),
`options` (activity timeouts and retry policies).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows import breakpoints, budget, dag, ui, user_spend
from workflows.dag import MilestoneState
from workflows.options import (
    db_options,
    llm_options,
    local_db_options,
    pin_tools_options,
    tool_call_options,
)
from workflows.outcome import EndTaskError, FailureReason, error_text

with workflow.unsafe.imports_passed_through():
    from activities.agent_activities import AgentActivities
    from activities.models import (
        BudgetBlock,
        ClassifyInput,
        ClassifyOutput,
        CompressInput,
        CompressOutput,
        DecisionInput,
        DecisionOutput,
        ExecuteInput,
        ExecuteOutcome,
        ExecuteOutput,
        ExecuteTurnInput,
        FinishInput,
        LLMCallInput,
        LLMCallOutput,
        MilestoneMarkInput,
        PauseInput,
        PlanInput,
        PlanOutput,
        StartTaskInput,
        StartTaskOutput,
        SummariseInput,
        VerifyInput,
        VerifyOutput,
    )
    from activities.policies import provider_unavailable_error
    from activities.task_activities import TaskActivities
    from activities.tools import CallToolInput, CallToolOutput, PinToolsInput, ToolActivities
    from agent.contract.breakpoints import ResumeAction
    from agent.contract.plan import (
        Plan,
        PlanValidationError,
        apply_edits,
        blocked_milestones,
        validate_plan,
    )
    from agent.contract.spend import (
        USER_DAILY_SCOPE,
        SpendLimitAction,
        SpendWindow,
        UserSpendLimit,
    )
    from agent.contract.task import (
        PLAN_MILESTONES_CEILING,
        Budget,
        MilestoneCarry,
        MilestoneProgress,
        MilestoneSpec,
        ModelChoice,
        PauseState,
        ResumeRequest,
        ResumeResult,
        TaskCarryOver,
        TaskInput,
        TaskProgress,
        TaskResult,
        ToolCallPause,
        Totals,
    )
    from agent.contract.tools import ToolCallRef, ToolCallStatus
    from agent.contract.waiting import PROVIDER_WAITING_SIGNAL, ProviderWait, call_key
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
        WAITING_ON,
    )

__all__ = [
    "COMPRESSION_TARGET_RATIO",
    "CONTINUE_AS_NEW_PATCH",
    "MAX_PLAN_ATTEMPTS",
    "USER_SPEND_PATCH",
    "FailureReason",
    "TaskWorkflow",
]

START_TASK_LOCAL_PATCH = "start-task-local-activity"
"""`workflow.patched` id: `start_task` runs as a local activity (saves a server round trip)."""

BUDGET_RESERVATION_PATCH = "budget-reservation"
"""`workflow.patched` id: under a limited budget every LLM call reserves its cap first, and
a call whose model has no price ends a task with a USD limit (`cost_unknown`)."""

BREAKPOINT_TIMEOUT_PATCH = "breakpoint-timeout-ends"
"""`workflow.patched` id: a timed-out `budget_exhausted` aborts, and a default action that
led back to the same breakpoint is not applied twice (`breakpoint_timed_out`)."""

WAITING_ON_PATCH = "waiting-on-search-attribute"
"""`workflow.patched` id: the task shows what it waits on in `WaitingOn` (`llm:<model>`
while a call waits out a provider outage, `person` while paused at a breakpoint)."""

TOOLS_PATCH = "tools"
"""`workflow.patched` id: a task with tools pins them at start, and its milestone attempts
are loops of model turns and tool calls (`execute_turn`, `call_tool`)."""

CONTINUE_AS_NEW_PATCH = "continue-as-new"
"""`workflow.patched` id: a run whose history nears `TaskInput.history_max_events` (or whose
server suggests it) continues as new at a safe point, carrying `TaskCarryOver`; continued
runs give their activities ids of their own (`run<n>-<k>`), so event keys stay unique."""

USER_SPEND_PATCH = "user-spend-limit"
"""`workflow.patched` id: every LLM call carries the user's daily window (`SpendWindow`);
at the user's daily spend limit the task pauses at `budget_exhausted` (scope `user_daily`)
until the window resets, then resumes by itself, or fails with `spend_limit_reached`."""

HISTORY_RESERVE_EVENTS = 20
"""Events kept free below the history bound for the run's last steps (continue-as-new and
its workflow task), on top of the most one milestone took so far."""

MAX_PLAN_ATTEMPTS = 3
"""Planner answers that fail validation are asked again this many times in all."""

COMPRESSION_TARGET_RATIO = 0.5
"""A compressed context aims at this share of the worker model's context budget."""

OutT = TypeVar("OutT", bound=LLMCallOutput)
InT = TypeVar("InT", bound=LLMCallInput)


@dataclass(frozen=True)
class _TimeoutPlan:
    """A pause's timeout: what it will do, and the default action its clients are shown."""

    outcome: breakpoints.TimeoutOutcome
    shown_action: ResumeAction


@workflow.defn
class TaskWorkflow:
    """Durable agent task. Workflow id: `task-{task_id}`.

    Update `resume(ResumeRequest) -> ResumeResult` (validated), query
    `progress() -> TaskProgress`.
    """

    def __init__(self) -> None:
        """Start empty; `run` fills in the task."""
        # The task and how it runs.
        self._input: TaskInput | None = None
        self._status = TaskStatus.PENDING
        self._complexity: TaskComplexity | None = None
        self._routes: dict[AgentRole, ModelChoice] = {}
        self._prompt_versions: dict[str, int] = {}
        self._tools: list[str] = []
        """`server.tool` of the task's pinned tools (none: attempts are single LLM calls)."""
        # Continue-as-new: which run of the chain this is, and whether it is handing over.
        self._run = 0
        self._activity_count = 0
        """Activities scheduled by this run (continued runs name their activities)."""
        self._continuing = False
        """Set at a safe point once the history is near its bound: start no milestone."""
        self._started_here = 0
        """Milestones this run started (a run hands over only after making progress)."""
        self._milestone_events = 0
        """The most history events one milestone took (start to end), the headroom kept."""
        self._stop: EndTaskError | None = None
        """Set when the task ends: later breakpoints and LLM calls raise it."""
        # The plan and its milestones.
        self._plan: Plan | None = None
        self._milestones: dict[str, MilestoneState] = {}
        self._running: set[str] = set()
        self._compressed: dict[str, int] = {}
        """Milestone key -> sequence number of its compressed context."""
        self._task_feedback: list[str] = []
        self._milestone_feedback: dict[str, list[str]] = {}
        # Usage and budget.
        self._totals = Totals()
        self._budget = Budget()
        self._budget_epoch = 0
        """Counts budget changes: a pause made moot by a parallel raise is skipped."""
        self._reservations = budget.Reservations()
        self._call_sizes = budget.CallSizes()
        self._spend_windows = user_spend.WindowTracker()
        """The user's daily window of the last LLM call (see `workflows.user_spend`)."""
        # Breakpoints: one pause at a time, parallel milestones queue on the lock.
        self._pause: PauseState | None = None
        self._decision: ResumeRequest | None = None
        self._pause_lock = asyncio.Lock()
        self._breakpoint_count = 0
        self._pause_epoch = 0
        """Counts lifted pauses: the DAG loop wakes on each (edits may make work ready)."""
        self._resolved: set[str] = set()
        self._defaulted_places: set[str] = set()
        """Breakpoint places (`breakpoints.place`) where a timeout applied the default."""
        # The Temporal UI: search attribute values as last upserted.
        self._search_attributes: dict[str, Any] = {}
        self._provider_waits: dict[str, ProviderWait] = {}
        """`call_key` -> the outage that call waits out (signalled by its activity)."""

    @property
    def _task(self) -> TaskInput:
        assert self._input is not None
        return self._input

    # ------------------------------------------------------------------ entry points

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
        if task.carry_over is not None:
            self._restore(task.carry_over)
        self._status = TaskStatus.RUNNING
        summary_preview = ""
        try:
            if task.carry_over is None:
                self._upsert(
                    {
                        TASK_STATUS.name: TaskStatus.RUNNING.value,
                        USER_ID.name: str(task.user_id),
                        AWAITING_HUMAN.name: False,
                        COST_USD.name: 0.0,
                    }
                )
                await self._start_and_route()
                if task.tools_enabled and workflow.patched(TOOLS_PATCH):
                    await self._pin_tools()
                await self._make_plan()
                if BreakpointKind.AFTER_PLAN in task.breakpoints:
                    await self._after_plan()
            else:
                self._refresh_details()
            await self._run_dag()
            if self._continuing and self._work_left():
                await self._continue_as_new()
            if dag.any_failed(self._milestones):
                raise EndTaskError(TaskStatus.FAILED, FailureReason.MILESTONES_FAILED)
            summary = await self._llm(
                AgentActivities.summarise,
                SummariseInput(**self._call_base(AgentRole.SUMMARISER)),
                role=AgentRole.SUMMARISER,
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
        counts = dag.status_counts(self._milestones)
        return TaskResult(
            task_id=task.task_id,
            status=stop.status,
            failure_reason=stop.reason,
            summary_preview=summary_preview,
            totals=self._totals,
            milestones_passed=counts[MilestoneStatus.PASSED],
            milestones_failed=counts[MilestoneStatus.FAILED],
            milestones_skipped=counts[MilestoneStatus.SKIPPED],
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
        breakpoints.check_resume(
            request,
            pause=self._pause,
            ending=self._stop is not None,
            already_decided=self._decision is not None,
            plan=self._plan,
            statuses=dag.statuses(self._milestones),
            max_milestones=self._task.max_plan_milestones,
        )

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
                for m in dag.in_plan_order(self._plan, self._milestones)
            ],
            totals=self._totals,
            budget=self._budget,
            paused=self._pause,
            current_milestones=dag.running_in_order(self._plan, self._running),
        )

    @workflow.signal(name=PROVIDER_WAITING_SIGNAL)
    def provider_waiting(self, wait: ProviderWait) -> None:
        """An LLM call started waiting out a provider outage: show it in `WaitingOn`."""
        if self._stop is not None:
            return
        self._provider_waits[wait.call] = wait
        self._show_waiting()

    # ------------------------------------------------------------------ start and plan

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
                role=AgentRole.CLASSIFIER,
                summary=f"classify · {choice.model}",
            )
            # The activity always answers both; the fallbacks only keep the types honest.
            self._complexity = out.complexity or TaskComplexity.MODERATE
            self._routes = dict(out.routes) or self._routes
        self._upsert({COMPLEXITY.name: self._complexity.value})

    async def _pin_tools(self) -> None:
        """Pin the task's tools; a server that cannot be reached fails the task, naming it."""
        try:
            out = await workflow.execute_activity_method(
                ToolActivities.pin_task_tools,
                PinToolsInput(task_id=self._task.task_id),
                summary="pin tools",
                activity_id=self._activity_id(),
                **pin_tools_options(),
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            raise EndTaskError(
                TaskStatus.FAILED, FailureReason.TOOL_UNAVAILABLE, error_text(exc)
            ) from exc
        self._tools = out.tools

    async def _make_plan(self, human_feedback: str | None = None) -> None:
        """Ask the planner until its plan validates (`MAX_PLAN_ATTEMPTS` in all)."""
        error: str | None = None
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            out: PlanOutput = await self._llm(
                AgentActivities.plan,
                PlanInput(
                    **self._call_base(AgentRole.PLANNER),
                    attempt=attempt,
                    feedback=error,
                    human_feedback=human_feedback,
                    max_milestones=self._task.max_plan_milestones,
                ),
                role=AgentRole.PLANNER,
                summary=self._summary("plan", AgentRole.PLANNER, attempt),
            )
            if out.valid:
                self._plan = validate_plan(
                    (
                        MilestoneSpec(key=m.key, title=m.title, depends_on=m.depends_on)
                        for m in out.milestones
                    ),
                    max_milestones=self._task.max_plan_milestones,
                )
                self._milestones = dag.states_of_plan(out.milestones)
                self._compressed.clear()
                self._refresh_details()
                return
            error = out.error or "invalid plan"
        raise EndTaskError(TaskStatus.FAILED, FailureReason.INVALID_PLAN, error)

    async def _after_plan(self) -> None:
        """Pause after planning; a `retry` asks the planner again with the feedback."""
        while True:
            decision = await self._human(
                BreakpointKind.AFTER_PLAN, None, f"plan of {len(self._milestones)} milestones"
            )
            if decision.action == ResumeAction.RETRY:
                await self._make_plan(decision.feedback)
                continue
            return

    # ------------------------------------------------------------------ the milestone DAG

    async def _run_dag(self) -> None:
        """Run every ready milestone, up to `max_parallel` at once, until none is left."""
        assert self._plan is not None
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                if not self._continuing and self._may_continue_as_new():
                    # A safe point comes once the running milestones end: start no more.
                    self._continuing = True
                if self._pause is None and not self._continuing:
                    for key in dag.milestones_to_start(
                        self._plan, self._milestones, tasks.keys(), self._task.max_parallel
                    ):
                        tasks[key] = asyncio.create_task(self._measured_milestone(key))
                        self._running.add(key)
                        self._started_here += 1
                    self._update_current()
                if not tasks:
                    if self._pause is None:
                        break
                    # A breakpoint owned by no milestone cannot happen here; be safe.
                    await workflow.wait_condition(lambda: self._pause is None)
                    continue
                epoch = self._pause_epoch

                # Wake when a milestone ends or a pause ends (an edit or the lifted pause
                # may have made milestones ready).
                def woken(epoch: int = epoch) -> bool:
                    return any(t.done() for t in tasks.values()) or (
                        self._pause is None and self._pause_epoch != epoch
                    )

                await workflow.wait_condition(woken)
                for key, done in list(tasks.items()):
                    if done.done():
                        del tasks[key]
                        self._running.discard(key)
                        done.result()  # re-raises EndTaskError / ActivityError of a milestone
        finally:
            # Milestone coroutines are separate asyncio tasks: cancelling the run coroutine
            # does not reach them, so they are cancelled (and awaited) here.
            for pending in tasks.values():
                pending.cancel()
            for key, pending in tasks.items():
                with contextlib.suppress(asyncio.CancelledError, EndTaskError, ActivityError):
                    await pending
                self._running.discard(key)
            self._update_current()
        for key in blocked_milestones(self._plan, dag.statuses(self._milestones)):
            workflow.logger.info("milestone blocked by a failed dependency: %s", key)

    async def _measured_milestone(self, key: str) -> None:
        """Run a milestone and learn how many history events it took (the run's headroom)."""
        info = workflow.info()
        first = info.get_current_history_length()
        await self._run_milestone(key)
        taken = info.get_current_history_length() - first
        self._milestone_events = max(self._milestone_events, taken)

    async def _run_milestone(self, key: str) -> None:
        """One milestone: its breakpoints, attempts and the verifier's retries."""
        state = self._milestones[key]
        task = self._task
        if BreakpointKind.BEFORE_MILESTONE in task.breakpoints:
            decision = await self._human(
                BreakpointKind.BEFORE_MILESTONE, key, f"about to run {key}"
            )
            if decision.action == ResumeAction.SKIP:
                await self._mark(state, MilestoneStatus.SKIPPED, "skipped at before_milestone")
                return
        allowed = task.max_attempts
        use_verifier_feedback = False
        while True:
            state.attempts += 1
            state.status = MilestoneStatus.IN_PROGRESS
            self._refresh_details()
            attempt = state.attempts
            await self._execute(state, attempt, use_verifier_feedback)
            verdict = await self._verify(state, attempt, allowed)
            if verdict.passed:
                if BreakpointKind.AFTER_MILESTONE in task.breakpoints:
                    decision = await self._human(
                        BreakpointKind.AFTER_MILESTONE, key, f"{key} passed"
                    )
                    if decision.action == ResumeAction.RETRY:
                        allowed = state.attempts + task.max_attempts
                        use_verifier_feedback = False
                        await self._mark(state, MilestoneStatus.IN_PROGRESS, "retry requested")
                        continue
                return
            if state.status != MilestoneStatus.FAILED:
                use_verifier_feedback = True
                continue
            if BreakpointKind.ON_FAILURE not in task.breakpoints:
                return
            decision = await self._human(
                BreakpointKind.ON_FAILURE,
                key,
                f"{key} failed after {state.attempts} attempts: {verdict.feedback_preview}",
            )
            if decision.action == ResumeAction.RETRY:
                allowed = state.attempts + task.max_attempts
                use_verifier_feedback = True
                await self._mark(state, MilestoneStatus.IN_PROGRESS, "retry requested")
                continue
            if decision.action == ResumeAction.SKIP:
                await self._mark(state, MilestoneStatus.SKIPPED, "skipped after failure")
            return

    async def _execute(self, state: MilestoneState, attempt: int, use_feedback: bool) -> None:
        """One worker attempt; a context too large is compressed once, then it fails."""
        key = state.key
        worker = self._routes[AgentRole.WORKER]
        feedback = dag.feedback_for(self._task_feedback, self._milestone_feedback, key)
        while True:
            compressed = self._compressed.get(key)
            execute = ExecuteInput(
                **self._call_base(AgentRole.WORKER),
                milestone_id=state.milestone_id,
                milestone_key=key,
                label=self._label(key),
                attempt=attempt,
                context_budget_tokens=worker.context_budget_tokens,
                use_verifier_feedback=use_feedback,
                human_feedback=feedback,
                compressed_context_seq=compressed,
            )
            out: ExecuteOutput
            if self._tools:
                out = await self._tool_attempt(execute)
            else:
                out = await self._llm(
                    AgentActivities.execute,
                    execute,
                    role=AgentRole.WORKER,
                    summary=self._summary("execute", AgentRole.WORKER, attempt, key),
                    milestone_key=key,
                )
            if out.outcome != ExecuteOutcome.CONTEXT_TOO_LARGE:
                return
            if compressed is not None:
                raise EndTaskError(
                    TaskStatus.FAILED,
                    FailureReason.CONTEXT_TOO_LARGE,
                    f"{key}: context of {out.context_tokens} tokens exceeds the budget "
                    "even after compression",
                )
            target = max(1, int(worker.context_budget_tokens * COMPRESSION_TARGET_RATIO))
            compressed_out: CompressOutput = await self._llm(
                AgentActivities.compress,
                CompressInput(
                    **self._call_base(AgentRole.COMPRESSOR),
                    milestone_id=state.milestone_id,
                    milestone_key=key,
                    label=self._label(key),
                    attempt=attempt,
                    target_tokens=target,
                ),
                role=AgentRole.COMPRESSOR,
                summary=self._summary("compress", AgentRole.COMPRESSOR, attempt, key),
                milestone_key=key,
            )
            if compressed_out.context_seq is None:
                raise EndTaskError(TaskStatus.FAILED, FailureReason.CONTEXT_TOO_LARGE, key)
            self._compressed[key] = compressed_out.context_seq

    async def _tool_attempt(self, execute: ExecuteInput) -> ExecuteOutput:
        """One attempt of a task with tools: model turns and their tool calls, until it answers.

        After `max_tool_rounds` turns with calls, the next turn offers no tools and tells the
        model to answer.
        """
        key = execute.milestone_key
        turn = 0
        while True:
            out: ExecuteOutput = await self._llm(
                AgentActivities.execute_turn,
                ExecuteTurnInput(
                    **execute.model_dump(),
                    turn=turn,
                    final_turn=turn >= self._task.max_tool_rounds,
                    approve_every_call=BreakpointKind.BEFORE_TOOL in self._task.breakpoints,
                ),
                role=AgentRole.WORKER,
                summary=self._summary("execute", AgentRole.WORKER, execute.attempt, key)
                + f" · turn {turn + 1}",
                milestone_key=key,
            )
            if out.outcome != ExecuteOutcome.TOOL_CALLS:
                return out
            await self._run_tool_calls(execute, out.tool_calls)
            turn += 1

    async def _run_tool_calls(self, execute: ExecuteInput, calls: list[ToolCallRef]) -> None:
        """Ask a person about the calls that need approval, then run the rest in parallel."""
        key = execute.milestone_key
        runnable: list[ToolCallRef] = []
        for ref in calls:
            if ref.status.is_final:
                continue  # rejected when the model asked: its error result is stored
            if ref.status == ToolCallStatus.AWAITING_APPROVAL:
                decision = await self._human(
                    BreakpointKind.BEFORE_TOOL,
                    key,
                    f"{ref.label} wants to run with {ref.arguments or '{}'}",
                    tool_call=ToolCallPause(
                        id=ref.id,
                        server=ref.server or "",
                        tool=ref.tool or "",
                        arguments=ref.arguments,
                    ),
                )
                if decision.action == ResumeAction.DENY:
                    continue  # the denial is the call's result
            runnable.append(ref)
        await self._tool_budget(len(runnable), key)
        outs = await asyncio.gather(*(self._call_tool(execute, ref) for ref in runnable))
        executed = sum(1 for out in outs if out.executed)
        self._totals = self._totals.model_copy(
            update={"tool_calls": self._totals.tool_calls + executed}
        )

    async def _call_tool(self, execute: ExecuteInput, ref: ToolCallRef) -> CallToolOutput:
        """Run one call as its own activity (the result stays in PostgreSQL).

        A call whose every attempt was lost goes back to the model as an error (the next
        turn reads a missing result as such) instead of failing the task.
        """
        try:
            return await workflow.execute_activity_method(
                ToolActivities.call_tool,
                CallToolInput(
                    task_id=execute.task_id,
                    session_id=execute.session_id,
                    milestone_id=execute.milestone_id,
                    milestone_key=execute.milestone_key,
                    call=ref,
                ),
                summary=ui.tool_summary(execute.label, ref.label, execute.attempt),
                activity_id=self._activity_id(),
                **tool_call_options(ref.timeout_seconds),
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            workflow.logger.warning("tool call %s gave up: %s", ref.label, error_text(exc))
            return CallToolOutput(status=ToolCallStatus.FAILED, is_error=True, executed=True)

    async def _tool_budget(self, wanted: int, milestone_key: str) -> None:
        """Wait at `budget_exhausted` (or fail) while `wanted` more calls pass the limit."""
        while True:
            limit = self._budget.max_tool_calls
            made = self._totals.tool_calls
            if limit is None or wanted == 0 or made + wanted <= limit:
                return
            reason = (
                f"tool call budget: {made} of {limit} calls made, the model asks for {wanted} more"
            )
            if BreakpointKind.BUDGET_EXHAUSTED not in self._task.breakpoints:
                raise EndTaskError(TaskStatus.FAILED, FailureReason.BUDGET_EXCEEDED, reason)
            await self._breakpoint(
                BreakpointKind.BUDGET_EXHAUSTED,
                milestone_key,
                reason,
                still_needed=self._budget_unchanged_since(self._budget_epoch),
            )

    def _budget_unchanged_since(self, epoch: int) -> Callable[[], bool]:
        """Whether no decision changed the budget since `epoch` (else a pause is moot)."""
        return lambda: self._budget_epoch == epoch

    async def _verify(self, state: MilestoneState, attempt: int, allowed: int) -> VerifyOutput:
        """Judge the attempt; a final verdict also records the task's progress."""
        verdict: VerifyOutput = await self._llm(
            AgentActivities.verify,
            VerifyInput(
                **self._call_base(AgentRole.VERIFIER),
                milestone_id=state.milestone_id,
                milestone_key=state.key,
                label=self._label(state.key),
                attempt=attempt,
                max_attempts=allowed,
            ),
            role=AgentRole.VERIFIER,
            summary=self._summary("verify", AgentRole.VERIFIER, attempt, state.key),
            milestone_key=state.key,
        )
        state.status = verdict.milestone_status
        self._refresh_details()
        if state.status in dag.VERDICT_STATUSES:
            self._upsert({COST_USD.name: ui.cost_value(self._totals)})
        return verdict

    async def _mark(self, state: MilestoneState, status: MilestoneStatus, reason: str) -> None:
        """Apply a transition the workflow decided; a skip also records the task's progress."""
        state.status = status
        self._refresh_details()
        skipped = status == MilestoneStatus.SKIPPED
        if skipped:
            self._upsert({COST_USD.name: ui.cost_value(self._totals)})
        await workflow.execute_activity_method(
            TaskActivities.mark_milestone,
            MilestoneMarkInput(
                task_id=self._task.task_id,
                session_id=self._task.session_id,
                milestone_id=state.milestone_id,
                milestone_key=state.key,
                status=status,
                reason=reason,
                report_progress=skipped,
            ),
            summary=f"{self._label(state.key)} · {status.value}",
            activity_id=self._activity_id(),
            **db_options(),
        )

    # ------------------------------------------------------------------ breakpoints

    async def _human(
        self,
        kind: BreakpointKind,
        milestone_key: str | None,
        reason: str,
        tool_call: ToolCallPause | None = None,
    ) -> ResumeRequest:
        """Pause at a breakpoint that cannot become moot and return the decision."""
        decision = await self._breakpoint(kind, milestone_key, reason, tool_call=tool_call)
        assert decision is not None
        return decision

    async def _breakpoint(
        self,
        kind: BreakpointKind,
        milestone_key: str | None,
        reason: str,
        still_needed: Callable[[], bool] | None = None,
        *,
        tool_call: ToolCallPause | None = None,
        user_limit: UserSpendLimit | None = None,
    ) -> ResumeRequest | None:
        """Pause at a breakpoint until resumed (or timed out); apply and record the decision.

        With `user_limit` the pause waits until the user's window resets and then
        continues (scope `user_daily`), whatever the task's breakpoint timeout.

        Returns:
            The decision, or None when `still_needed` says the pause became moot.

        Raises:
            EndTaskError: When the decision is `abort`.
        """
        task = self._task
        async with self._pause_lock:
            if self._stop is not None:
                raise self._stop
            if still_needed is not None and not still_needed():
                return None
            self._breakpoint_count += 1
            pause_id = breakpoints.breakpoint_id(self._breakpoint_count, kind, milestone_key)
            place = breakpoints.place(kind, milestone_key)
            timeout = breakpoints.breakpoint_timeout(task.breakpoint_timeout_seconds)
            on_timeout = self._on_timeout(kind, pause_id, place) if timeout is not None else None
            if user_limit is not None:
                timeout = user_spend.wait_until_reset(workflow.now(), user_limit.resets_at)
                on_timeout = _TimeoutPlan(
                    outcome=breakpoints.TimeoutOutcome(ResumeAction.CONTINUE),
                    shown_action=ResumeAction.CONTINUE,
                )
            pause = breakpoints.open_pause(
                pause_id,
                kind,
                milestone_key,
                reason,
                now=workflow.now(),
                timeout=timeout,
                default_action=on_timeout.shown_action if on_timeout is not None else None,
                tool_call=tool_call,
                scope=USER_DAILY_SCOPE if user_limit is not None else None,
                resets_at=user_limit.resets_at if user_limit is not None else None,
            )
            milestone_id = (
                self._milestones[milestone_key].milestone_id
                if milestone_key in self._milestones
                else None
            )
            self._pause = pause
            self._status = TaskStatus.PAUSED
            self._upsert(
                {
                    TASK_STATUS.name: TaskStatus.PAUSED.value,
                    AWAITING_HUMAN.name: True,
                    COST_USD.name: ui.cost_value(self._totals),
                }
            )
            self._show_waiting()
            self._refresh_details()
            await workflow.execute_activity_method(
                TaskActivities.pause_task,
                PauseInput(
                    task_id=task.task_id,
                    session_id=task.session_id,
                    pause=pause,
                    milestone_id=milestone_id,
                    totals=self._totals,
                ),
                summary=ui.pause_summary(kind, milestone_key),
                activity_id=self._activity_id(),
                **db_options(),
            )
            timed_out = False
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
            except TimeoutError:
                timed_out = True
            decision = self._decision
            ending: EndTaskError | None = None
            if decision is None:
                assert on_timeout is not None
                timed_out = True
                outcome = on_timeout.outcome
                if outcome.failure is not None:
                    ending = EndTaskError(TaskStatus.FAILED, outcome.failure, outcome.error)
                if user_limit is None:
                    # (A reset is no default action: the next pause there is a new one.)
                    self._defaulted_places.add(place)
                decision = ResumeRequest(breakpoint_id=pause_id, action=outcome.action)
            else:
                self._defaulted_places.discard(place)
            await self._apply_decision(pause, decision, milestone_id, timed_out)
            self._decision = None
            self._pause = None
            self._pause_epoch += 1
            self._resolved.add(pause.breakpoint_id)
            self._status = TaskStatus.RUNNING
            self._upsert({TASK_STATUS.name: TaskStatus.RUNNING.value, AWAITING_HUMAN.name: False})
            self._show_waiting()
            self._refresh_details()
        if ending is not None:
            raise ending
        if decision.action == ResumeAction.ABORT:
            raise EndTaskError(TaskStatus.CANCELLED, FailureReason.ABORTED, decision.feedback)
        return decision

    def _on_timeout(self, kind: BreakpointKind, pause_id: str, place: str) -> _TimeoutPlan:
        """What the pause's timeout will do, decided (and shown to clients) when it opens."""
        default = self._task.breakpoint_default_action
        if workflow.patched(BREAKPOINT_TIMEOUT_PATCH):
            outcome = breakpoints.on_timeout(
                kind, pause_id, default, defaulted_here=place in self._defaulted_places
            )
            return _TimeoutPlan(outcome=outcome, shown_action=outcome.action)
        # Before the patch a timeout applied the default (or `continue`) every time, and
        # the pause showed the task's default as given.
        legacy = breakpoints.TimeoutOutcome(breakpoints.timeout_action(kind, default))
        return _TimeoutPlan(outcome=legacy, shown_action=default)

    async def _apply_decision(
        self,
        pause: PauseState,
        decision: ResumeRequest,
        milestone_id: UUID | None,
        timed_out: bool,
    ) -> None:
        """Record a decision; apply its budget, feedback and plan edit."""
        task = self._task
        new_plan = self._plan
        if decision.edits is not None and self._plan is not None:
            try:
                new_plan = apply_edits(
                    self._plan,
                    decision.edits,
                    dag.statuses(self._milestones),
                    max_milestones=self._task.max_plan_milestones,
                )
            except PlanValidationError as exc:  # pragma: no cover - validated by the update
                workflow.logger.warning("plan edit no longer applies: %s", exc)
                decision = decision.model_copy(update={"edits": None})
                new_plan = self._plan
        if decision.budget is not None:
            self._budget_epoch += 1
            self._budget = self._budget.merged(decision.budget)
        out: DecisionOutput = await workflow.execute_activity_method(
            TaskActivities.record_decision,
            DecisionInput(
                task_id=task.task_id,
                session_id=task.session_id,
                pause=pause,
                request=decision,
                timed_out=timed_out,
                decided_at=workflow.now(),
                milestone_id=milestone_id,
                plan_keys=dag.plan_keys(new_plan),
            ),
            summary=f"resume · {pause.kind.value} · {decision.action.value}",
            activity_id=self._activity_id(),
            **db_options(),
        )
        if decision.feedback and pause.kind != BreakpointKind.BEFORE_TOOL:
            # (A denial's feedback is the tool call's result, not guidance for the worker.)
            if pause.milestone_key is not None:
                self._milestone_feedback.setdefault(pause.milestone_key, []).append(
                    decision.feedback
                )
            elif decision.action != ResumeAction.RETRY:
                # A re-plan's feedback goes to the planner only.
                self._task_feedback.append(decision.feedback)
        if new_plan is not None and new_plan is not self._plan:
            self._milestones = dag.states_after_edit(self._milestones, new_plan, out.milestone_ids)
            self._plan = new_plan
            self._compressed.clear()

    # ------------------------------------------------------------------ LLM calls and budget

    async def _llm(
        self,
        activity: Callable[[Any, InT], Awaitable[OutT]],
        data: InT,
        *,
        role: AgentRole,
        summary: str,
        milestone_key: str | None = None,
    ) -> OutT:
        """Run one LLM activity under the budget; wait, pause or stop when it would pass it.

        Under a limited budget the call first reserves a cap (`workflows.budget.grant`):
        it waits while the calls in flight leave no room for its estimate, asks again with
        its own estimate when the activity refused a cap below it, and pauses or stops
        only when it was refused all that is left with nothing else in flight.
        """
        refused: BudgetBlock | None = None
        while True:
            if self._stop is not None:
                raise self._stop
            epoch = self._budget_epoch
            reserving = self._reserving()
            if reserving and budget.cost_unknown_under_usd_budget(self._budget, self._totals):
                raise EndTaskError(
                    TaskStatus.FAILED,
                    FailureReason.COST_UNKNOWN,
                    "a model the task called has no price, so its USD limit cannot be "
                    "enforced (the LLM_COMPLETE events show which)",
                )
            left = budget.remaining(self._budget, self._totals)
            if budget.is_spent(left):
                if reserving and self._reservations.calls > 0:
                    # Stop only once the calls in flight settled: they are within their caps.
                    await self._room_freed(epoch)
                    continue
                await self._budget_exhausted(None, milestone_key, epoch)
                continue
            cap, final = left, True
            if reserving:
                granted = budget.grant(
                    self._budget,
                    budget.available(self._budget, self._totals, self._reservations),
                    budget.at_least(self._call_sizes.estimate(role, data.model), refused),
                    in_flight=self._reservations.calls,
                    alone=self._reservations.calls == 0 and len(self._running) <= 1,
                )
                if granted is None:
                    await self._room_freed(epoch)
                    continue
                cap, final = granted.cap, granted.final
                self._reservations.hold(cap)
            try:
                out: OutT = await workflow.execute_activity_method(
                    activity,
                    data.model_copy(update={"budget": cap, "spend_window": self._spend_window()}),
                    summary=summary,
                    activity_id=self._activity_id(),
                    **llm_options(self._task.llm_outage_tolerance_seconds),
                )
            except ActivityError as exc:
                if not provider_unavailable_error(exc):
                    raise
                await self._provider_unavailable(error_text(exc), milestone_key)
                continue
            finally:
                if reserving:
                    self._reservations.release(cap)
                if self._provider_waits.pop(call_key(role, milestone_key), None) is not None:
                    self._show_waiting()
            self._totals = budget.add_usage(self._totals, out.usage)
            if reserving:
                self._call_sizes.learn(role, data.model, out)
            if workflow.cancellation_reason() is not None:
                # A cancel that reached an activity about to finish is erased when it
                # completes anyway (WAIT_CANCELLATION_COMPLETED): honour it here.
                raise asyncio.CancelledError
            if out.blocked is not None and out.blocked.user_daily is not None:
                await self._user_spend_limit(out.blocked.user_daily, milestone_key)
                continue
            if out.blocked is not None:
                if not final:
                    refused = out.blocked
                    continue
                await self._budget_exhausted(out.blocked, milestone_key, epoch)
                continue
            return out

    async def _provider_unavailable(self, error: str, milestone_key: str | None) -> None:
        """A call outlasted its outage tolerance: pause at `on_failure`, else fail the task.

        Work done stays done: `retry` at the pause calls the provider again (with a fresh
        tolerance); any other decision ends the task with `provider_unavailable`.
        """
        if BreakpointKind.ON_FAILURE in self._task.breakpoints:
            decision = await self._human(BreakpointKind.ON_FAILURE, milestone_key, error)
            if decision.action == ResumeAction.RETRY:
                return
        raise EndTaskError(TaskStatus.FAILED, FailureReason.PROVIDER_UNAVAILABLE, error)

    def _spend_window(self) -> SpendWindow | None:
        """The user's daily window the next LLM call is checked against (patched code)."""
        if not workflow.patched(USER_SPEND_PATCH):
            return None
        return self._spend_windows.window_for(workflow.now(), self._totals)

    async def _user_spend_limit(self, limit: UserSpendLimit, milestone_key: str | None) -> None:
        """The user's daily limit refused a call: pause until the window resets, or fail.

        The pause is a `budget_exhausted` breakpoint whether or not the task asked for
        that kind (the limit is the user's, not the task's): its timeout is the reset,
        when it continues by itself; a person may resume (after an admin raised the limit)
        or abort before. Afterwards the call is made again, in the window of its time.
        """
        reason = limit.describe()
        if limit.action == SpendLimitAction.FAIL:
            raise EndTaskError(TaskStatus.FAILED, FailureReason.SPEND_LIMIT_REACHED, reason)
        epoch = self._pause_epoch
        # A pause lifted meanwhile (another milestone's at the limit): try the call again.
        await self._breakpoint(
            BreakpointKind.BUDGET_EXHAUSTED,
            milestone_key,
            reason,
            still_needed=lambda: self._pause_epoch == epoch and workflow.now() < limit.resets_at,
            user_limit=limit,
        )

    def _reserving(self) -> bool:
        """Whether calls reserve their caps (a limited budget, on the patched code)."""
        limited = self._budget.max_tokens is not None or self._budget.max_cost_usd is not None
        return limited and workflow.patched(BUDGET_RESERVATION_PATCH)

    async def _room_freed(self, epoch: int) -> None:
        """Wait until a call in flight settles or a person changes the budget."""
        settled = self._reservations.settled
        await workflow.wait_condition(
            lambda: self._reservations.settled != settled or self._budget_epoch != epoch
        )

    async def _budget_exhausted(
        self, block: BudgetBlock | None, milestone_key: str | None, epoch: int
    ) -> None:
        """Pause at `budget_exhausted`, or stop with `budget_exceeded` without it."""
        if BreakpointKind.BUDGET_EXHAUSTED not in self._task.breakpoints:
            raise EndTaskError(
                TaskStatus.FAILED, FailureReason.BUDGET_EXCEEDED, budget.exceeded_detail(block)
            )
        # A parallel milestone's pause may have raised the budget meanwhile: then just retry.
        await self._breakpoint(
            BreakpointKind.BUDGET_EXHAUSTED,
            milestone_key,
            budget.exhausted_reason(block),
            still_needed=lambda: self._budget_epoch == epoch,
        )

    def _call_base(self, role: AgentRole) -> dict[str, Any]:
        """The fields every LLM activity input of `role` shares."""
        return {
            "task_id": self._task.task_id,
            "session_id": self._task.session_id,
            "model": self._routes[role].model,
            "prompt_version": self._prompt_versions.get(role.value),
        }

    # ------------------------------------------------------------------ finish

    async def _finish_cancelled(self) -> None:
        self._status = TaskStatus.CANCELLED
        await self._finish(EndTaskError(TaskStatus.CANCELLED, FailureReason.CANCELLED))

    async def _finish(self, stop: EndTaskError) -> None:
        """Record the task's terminal state (a local activity: the status is decided)."""
        self._stop = stop
        self._status = stop.status
        self._pause = None
        self._upsert(
            {
                TASK_STATUS.name: stop.status.value,
                AWAITING_HUMAN.name: False,
                COST_USD.name: ui.cost_value(self._totals),
                CURRENT_MILESTONE.name: None,
            }
        )
        self._provider_waits.clear()
        self._show_waiting()
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
                counts=dag.status_counts(self._milestones),
            ),
            summary=f"finish · {stop.status.value}",
            activity_id=self._activity_id(),
            **local_db_options(),
        )

    # ------------------------------------------------------------------ continue-as-new

    def _may_continue_as_new(self) -> bool:
        """Whether this run should hand over to a new one once its milestones end.

        When Temporal suggests it, or when the history plus the headroom (the most events
        one milestone took, and `HISTORY_RESERVE_EVENTS`) reaches the task's bound. A run
        hands over only after it started a milestone, so every run makes progress.
        """
        if self._started_here == 0:
            return False
        info = workflow.info()
        reserve = self._milestone_events + HISTORY_RESERVE_EVENTS
        full = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() + reserve >= self._task.history_max_events
        )
        return full and workflow.patched(CONTINUE_AS_NEW_PATCH)

    def _work_left(self) -> bool:
        """Whether milestones are left to run (else the task ends in this run)."""
        assert self._plan is not None
        return bool(
            dag.milestones_to_start(self._plan, self._milestones, (), self._task.max_parallel)
        )

    async def _continue_as_new(self) -> None:
        """Hand the task's state to a new run of the same workflow id (a safe point).

        No milestone runs and no pause is open here; an update accepted meanwhile (the
        resume that lifted the last pause) completes first, so its caller gets its answer
        and the new run never sees it.
        """
        await workflow.wait_condition(workflow.all_handlers_finished)
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError
        carry = self._carry_over()
        workflow.logger.info(
            "continuing as new: run %d after %d history events",
            carry.run,
            workflow.info().get_current_history_length(),
        )
        workflow.continue_as_new(self._task.model_copy(update={"carry_over": carry}))

    def _carry_over(self) -> TaskCarryOver:
        """The state the next run needs: ids, statuses, counters and usage, never outputs."""
        assert self._complexity is not None
        return TaskCarryOver(
            run=self._run + 1,
            complexity=self._complexity,
            routes=self._routes,
            prompt_versions=self._prompt_versions,
            tools=self._tools,
            milestones=[
                MilestoneCarry(
                    key=m.key,
                    title=m.title,
                    depends_on=list(m.depends_on),
                    milestone_id=m.milestone_id,
                    status=m.status,
                    attempts=m.attempts,
                )
                for m in dag.in_plan_order(self._plan, self._milestones)
            ],
            compressed=self._compressed,
            task_feedback=self._task_feedback,
            milestone_feedback=self._milestone_feedback,
            totals=self._totals,
            budget=self._budget,
            breakpoint_count=self._breakpoint_count,
            defaulted_places=sorted(self._defaulted_places),
            call_prompt_tokens=self._call_sizes.prompt_tokens,
            call_usd_per_token=self._call_sizes.usd_per_token,
            milestone_events=self._milestone_events,
            search_attributes=self._search_attributes,
            spend_window=self._spend_windows.window,
        )

    def _restore(self, carry: TaskCarryOver) -> None:
        """Take over the state the previous run handed on (see `_carry_over`)."""
        self._run = carry.run
        self._complexity = carry.complexity
        self._routes = dict(carry.routes)
        self._prompt_versions = dict(carry.prompt_versions)
        self._tools = list(carry.tools)
        # The plan was accepted when it was made: only the ceiling applies to its rebuild.
        self._plan = validate_plan(
            (
                MilestoneSpec(key=m.key, title=m.title, depends_on=m.depends_on)
                for m in carry.milestones
            ),
            max_milestones=PLAN_MILESTONES_CEILING,
        )
        self._milestones = {
            m.key: MilestoneState(
                key=m.key,
                title=m.title,
                depends_on=list(m.depends_on),
                milestone_id=m.milestone_id,
                status=m.status,
                attempts=m.attempts,
            )
            for m in carry.milestones
        }
        self._compressed = dict(carry.compressed)
        self._task_feedback = list(carry.task_feedback)
        self._milestone_feedback = {k: list(v) for k, v in carry.milestone_feedback.items()}
        self._totals = carry.totals
        self._budget = carry.budget
        self._breakpoint_count = carry.breakpoint_count
        self._defaulted_places = set(carry.defaulted_places)
        self._call_sizes = budget.CallSizes(
            prompt_tokens=dict(carry.call_prompt_tokens),
            usd_per_token=dict(carry.call_usd_per_token),
        )
        self._milestone_events = carry.milestone_events
        self._search_attributes = dict(carry.search_attributes)
        self._spend_windows = user_spend.WindowTracker(carry.spend_window)

    def _activity_id(self) -> str | None:
        """The next activity's id: Temporal's own in the first run, `run<n>-<k>` after.

        Event idempotency keys are `{workflow_id}:{activity_id}:{index}` and activity ids
        restart in every run, so a continued run names its activities itself.
        """
        if self._run == 0:
            return None
        self._activity_count += 1
        return f"run{self._run}-{self._activity_count}"

    # ------------------------------------------------------------------ the Temporal UI

    def _upsert(self, values: dict[str, Any]) -> None:
        """Upsert the search attributes that changed (every upsert is a history event)."""
        updates = ui.changed_search_attributes(self._search_attributes, values)
        self._search_attributes.update(values)
        if updates:
            workflow.upsert_search_attributes(updates)

    def _show_waiting(self) -> None:
        """Upsert `WaitingOn`: a person at a breakpoint, else the first provider waited on.

        Histories from before `WAITING_ON_PATCH` never set it; a task that never waited
        never unsets it either (an unset is an upsert command too).
        """
        value = ui.waiting_on_value(
            paused=self._pause is not None,
            models=[w.model for w in self._provider_waits.values()],
        )
        if value is None and WAITING_ON.name not in self._search_attributes:
            return
        if workflow.patched(WAITING_ON_PATCH):
            self._upsert({WAITING_ON.name: value})

    def _update_current(self) -> None:
        """Show which milestones run now (`CurrentMilestone` and the details table)."""
        running = dag.running_in_order(self._plan, self._running)
        self._upsert({CURRENT_MILESTONE.name: ui.current_milestone_value(running)})
        self._refresh_details()

    def _refresh_details(self) -> None:
        ordered = dag.in_plan_order(self._plan, self._milestones)
        workflow.set_current_details(
            ui.details_markdown(self._status, self._pause, self._totals, ordered)
        )

    def _summary(
        self, step: str, role: AgentRole, attempt: int | None = None, key: str | None = None
    ) -> str:
        """An LLM activity's summary (the role's model, the milestone's position)."""
        model = self._routes[role].model if role in self._routes else role.value
        label = self._label(key) if key is not None else None
        return ui.activity_summary(step, model, label=label, attempt=attempt)

    def _label(self, key: str) -> str:
        return dag.position_label(self._plan, key)
