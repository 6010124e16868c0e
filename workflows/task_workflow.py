"""`TaskWorkflow`: plan a goal into milestones, run them as a DAG, verify, summarise.

Pure orchestration: every side effect is an activity; the workflow carries ids, statuses,
usage and short previews only. Steps (DESIGN §5): start -> classify -> route -> plan ->
`after_plan` -> milestone DAG (execute -> verify -> retry) -> summarise -> finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.agent_activities import AgentActivities
    from activities.models import (
        BudgetBlock,
        BudgetRemaining,
        ClassifyInput,
        ClassifyOutput,
        CompressInput,
        CompressOutput,
        DecisionInput,
        DecisionOutput,
        ExecuteInput,
        ExecuteOutcome,
        ExecuteOutput,
        FinishInput,
        LLMCallInput,
        LLMCallOutput,
        MilestoneMarkInput,
        ModelChoice,
        PauseInput,
        PlanInput,
        PlanOutput,
        ProgressInput,
        RoutesInput,
        RoutesOutput,
        StartTaskInput,
        StartTaskOutput,
        SummariseInput,
        VerifyInput,
        VerifyOutput,
    )
    from activities.policies import (
        DB_RETRY_POLICY,
        DB_START_TO_CLOSE_TIMEOUT,
        LLM_HEARTBEAT_TIMEOUT,
        LLM_RETRY_POLICY,
        LLM_START_TO_CLOSE_TIMEOUT,
    )
    from activities.task_activities import TaskActivities
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
    from workflows.models import (
        Budget,
        MilestoneProgress,
        MilestoneSpec,
        PauseState,
        ResumeAction,
        ResumeRequest,
        ResumeResult,
        TaskInput,
        TaskProgress,
        TaskResult,
        Totals,
    )
    from workflows.plan import (
        Plan,
        PlanValidationError,
        apply_edits,
        blocked_milestones,
        ready_milestones,
        validate_plan,
    )

MAX_PLAN_ATTEMPTS = 3
"""Planner answers that fail validation are asked again this many times in all."""

COMPRESSION_TARGET_RATIO = 0.5
"""A compressed context aims at this share of the worker model's context budget."""

DETAILS_MAX_ROWS = 30
"""Rows of the markdown progress table shown in the Temporal UI."""

ALLOWED_ACTIONS: dict[BreakpointKind, frozenset[ResumeAction]] = {
    # `retry` after the plan asks the planner again with the person's feedback.
    BreakpointKind.AFTER_PLAN: frozenset(
        {ResumeAction.CONTINUE, ResumeAction.RETRY, ResumeAction.ABORT}
    ),
    BreakpointKind.BEFORE_MILESTONE: frozenset(
        {ResumeAction.CONTINUE, ResumeAction.SKIP, ResumeAction.ABORT}
    ),
    # `retry` after a passed milestone runs it again with the person's feedback.
    BreakpointKind.AFTER_MILESTONE: frozenset(
        {ResumeAction.CONTINUE, ResumeAction.RETRY, ResumeAction.ABORT}
    ),
    # `continue` accepts the failure: dependants cannot run and the task ends failed.
    BreakpointKind.ON_FAILURE: frozenset(
        {ResumeAction.CONTINUE, ResumeAction.RETRY, ResumeAction.SKIP, ResumeAction.ABORT}
    ),
    BreakpointKind.BUDGET_EXHAUSTED: frozenset({ResumeAction.CONTINUE, ResumeAction.ABORT}),
}
"""Which resume actions fit which breakpoint kind."""

EDITABLE_KINDS: frozenset[BreakpointKind] = frozenset(BreakpointKind)
"""Plan edits are accepted at every breakpoint (locked milestones excepted)."""


class FailureReason:
    """Stable `failure_reason` strings of a task that did not complete."""

    BUDGET_EXCEEDED = "budget_exceeded"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    MILESTONES_FAILED = "milestones_failed"
    INVALID_PLAN = "invalid_plan"
    CONTEXT_TOO_LARGE = "context_too_large"
    ACTIVITY_FAILED = "activity_failed"


@dataclass
class _EndTaskError(Exception):
    """Raised inside the workflow to end the task cleanly with a status and reason."""

    status: TaskStatus
    reason: str
    error: str | None = None


OutT = TypeVar("OutT", bound=LLMCallOutput)
InT = TypeVar("InT", bound=LLMCallInput)


@dataclass
class _MilestoneState:
    key: str
    title: str
    depends_on: list[str]
    milestone_id: UUID
    status: MilestoneStatus = MilestoneStatus.PENDING
    attempts: int = 0


def _db_options() -> dict[str, Any]:
    return {
        "start_to_close_timeout": DB_START_TO_CLOSE_TIMEOUT,
        "retry_policy": DB_RETRY_POLICY,
    }


def _llm_options() -> dict[str, Any]:
    return {
        "start_to_close_timeout": LLM_START_TO_CLOSE_TIMEOUT,
        "heartbeat_timeout": LLM_HEARTBEAT_TIMEOUT,
        "retry_policy": LLM_RETRY_POLICY,
        # Wait for the activity to close its stream and record partial usage, so the
        # cancellation event is written after the agent's last event.
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


@workflow.defn
class TaskWorkflow:
    """Durable agent task. Workflow id: `task-{task_id}`.

    Update `resume(ResumeRequest) -> ResumeResult` (validated), query
    `progress() -> TaskProgress`.
    """

    def __init__(self) -> None:
        self._input: TaskInput | None = None
        self._status = TaskStatus.PENDING
        self._complexity: TaskComplexity | None = None
        self._routes: dict[AgentRole, ModelChoice] = {}
        self._prompt_versions: dict[str, int] = {}
        self._plan: Plan | None = None
        self._milestones: dict[str, _MilestoneState] = {}
        self._totals = Totals()
        self._budget = Budget()
        self._pause: PauseState | None = None
        self._pause_milestone_id: UUID | None = None
        self._decision: ResumeRequest | None = None
        self._pause_lock = asyncio.Lock()
        self._breakpoint_count = 0
        self._running: set[str] = set()
        self._task_feedback: list[str] = []
        self._milestone_feedback: dict[str, list[str]] = {}
        self._compressed: dict[str, int] = {}
        self._stop: _EndTaskError | None = None
        self._search_attributes: dict[str, Any] = {}
        self._pause_epoch = 0
        self._resolved: set[str] = set()
        self._budget_epoch = 0

    # ------------------------------------------------------------------ public API

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
            await self._start()
            await self._classify_and_route()
            await self._make_plan()
            if BreakpointKind.AFTER_PLAN in task.breakpoints:
                await self._after_plan()
            await self._run_dag()
            if any(m.status == MilestoneStatus.FAILED for m in self._milestones.values()):
                raise _EndTaskError(TaskStatus.FAILED, FailureReason.MILESTONES_FAILED)
            summary = await self._llm(
                AgentActivities.summarise,
                SummariseInput(**self._call_base(AgentRole.SUMMARISER)),
                AgentRole.SUMMARISER,
                summary=self._summary("summarise", AgentRole.SUMMARISER),
            )
            summary_preview = summary.summary_preview
            stop = _EndTaskError(TaskStatus.COMPLETED, "")
        except _EndTaskError as exc:
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
            stop = _EndTaskError(TaskStatus.FAILED, FailureReason.ACTIVITY_FAILED, _error_text(exc))
        await self._finish(stop)
        # Updates accepted while finishing must complete before the run returns.
        await workflow.wait_condition(workflow.all_handlers_finished)
        counts = self._counts()
        return TaskResult(
            task_id=task.task_id,
            status=stop.status,
            failure_reason=stop.reason or None,
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
        pause = self._pause
        if pause is None or self._stop is not None:
            raise ApplicationError("the task is not paused", type="TaskNotPaused")
        if self._decision is not None:
            raise ApplicationError("this breakpoint was already resumed", type="AlreadyResumed")
        if request.breakpoint_id != pause.breakpoint_id:
            raise ApplicationError(
                f"the task waits at breakpoint {pause.breakpoint_id!r}, "
                f"not {request.breakpoint_id!r}",
                type="WrongBreakpoint",
            )
        if request.action not in ALLOWED_ACTIONS[pause.kind]:
            allowed = ", ".join(sorted(a.value for a in ALLOWED_ACTIONS[pause.kind]))
            raise ApplicationError(
                f"action {request.action.value!r} does not fit a {pause.kind.value} "
                f"breakpoint (allowed: {allowed})",
                type="InvalidAction",
            )
        if request.edits is not None and self._plan is not None:
            try:
                apply_edits(self._plan, request.edits, self._statuses())
            except PlanValidationError as exc:
                raise ApplicationError(f"invalid plan edit: {exc}", type="InvalidPlanEdit") from exc
            if pause.milestone_key is not None and pause.milestone_key in request.edits.remove:
                raise ApplicationError(
                    "cannot remove the milestone the task is paused at; use skip",
                    type="InvalidPlanEdit",
                )
        if (
            request.edits is not None
            and pause.kind == BreakpointKind.AFTER_PLAN
            and request.action == ResumeAction.RETRY
        ):
            raise ApplicationError(
                "retry after the plan asks the planner for a new plan; send edits with "
                "continue, or feedback with retry",
                type="InvalidPlanEdit",
            )
        if request.edits is not None and self._plan is None:
            raise ApplicationError("there is no plan to edit yet", type="InvalidPlanEdit")

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

    async def _start(self) -> None:
        task = self._task
        started: StartTaskOutput = await workflow.execute_activity_method(
            TaskActivities.start_task,
            StartTaskInput(task_id=task.task_id, session_id=task.session_id),
            summary="start task",
            **_db_options(),
        )
        self._prompt_versions = started.prompt_versions

    async def _classify_and_route(self) -> None:
        if self._complexity is None:
            # The classifier is routed like every other role, from the default complexity
            # the routing table gives the trivial level (the cheapest model).
            routes = await self._resolve_routes(TaskComplexity.TRIVIAL)
            choice = routes[AgentRole.CLASSIFIER]
            out: ClassifyOutput = await self._llm(
                AgentActivities.classify,
                ClassifyInput(
                    task_id=self._task.task_id,
                    session_id=self._task.session_id,
                    model=choice.model,
                    prompt_version=self._prompt_versions.get(AgentRole.CLASSIFIER.value),
                ),
                AgentRole.CLASSIFIER,
                summary=f"classify · {choice.model}",
            )
            self._complexity = out.complexity or TaskComplexity.MODERATE
        self._upsert({COMPLEXITY.name: self._complexity.value})
        self._routes = await self._resolve_routes(self._complexity)

    async def _resolve_routes(self, complexity: TaskComplexity) -> dict[AgentRole, ModelChoice]:
        out: RoutesOutput = await workflow.execute_activity_method(
            AgentActivities.resolve_routes,
            RoutesInput(complexity=complexity),
            summary=f"route models · {complexity.value}",
            **_db_options(),
        )
        return dict(out.routes)

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
                AgentRole.PLANNER,
                summary=self._summary("plan", AgentRole.PLANNER, attempt),
            )
            if out.valid:
                self._plan = validate_plan(
                    MilestoneSpec(key=m.key, title=m.title, depends_on=m.depends_on)
                    for m in out.milestones
                )
                self._milestones = {
                    m.key: _MilestoneState(
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
        raise _EndTaskError(TaskStatus.FAILED, FailureReason.INVALID_PLAN, error)

    async def _after_plan(self) -> None:
        while True:
            decision = await self._human(
                BreakpointKind.AFTER_PLAN, None, f"plan of {len(self._milestones)} milestones"
            )
            if decision.action == ResumeAction.RETRY:
                await self._make_plan(decision.feedback)
                continue
            return

    async def _run_dag(self) -> None:
        assert self._plan is not None
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                if self._pause is None:
                    ready = ready_milestones(self._plan, self._statuses(), tasks.keys())
                    for key in ready[: max(0, self._task.max_parallel - len(tasks))]:
                        tasks[key] = asyncio.create_task(self._run_milestone(key))
                        self._running.add(key)
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
                        done.result()  # re-raises _EndTaskError / ActivityError of a milestone
        finally:
            # Milestone coroutines are separate asyncio tasks: cancelling the run coroutine
            # does not reach them, so they are cancelled (and awaited) here.
            for pending in tasks.values():
                pending.cancel()
            for key, pending in tasks.items():
                with contextlib.suppress(asyncio.CancelledError, _EndTaskError, ActivityError):
                    await pending
                self._running.discard(key)
            self._update_current()
        for key in blocked_milestones(self._plan, self._statuses()):
            workflow.logger.info("milestone blocked by a failed dependency: %s", key)

    async def _run_milestone(self, key: str) -> None:
        state = self._milestones[key]
        task = self._task
        if BreakpointKind.BEFORE_MILESTONE in task.breakpoints:
            decision = await self._human(
                BreakpointKind.BEFORE_MILESTONE, key, f"about to run {key}"
            )
            if decision.action == ResumeAction.SKIP:
                await self._mark(state, MilestoneStatus.SKIPPED, "skipped at before_milestone")
                await self._progress(key)
                return
        allowed = task.max_attempts
        use_verifier_feedback = False
        while True:
            state.attempts += 1
            state.status = MilestoneStatus.IN_PROGRESS
            self._refresh_details()
            attempt = state.attempts
            await self._execute(state, attempt, use_verifier_feedback)
            verdict: VerifyOutput = await self._llm(
                AgentActivities.verify,
                VerifyInput(
                    **self._call_base(AgentRole.VERIFIER),
                    milestone_id=state.milestone_id,
                    milestone_key=key,
                    label=self._label(key),
                    attempt=attempt,
                    max_attempts=allowed,
                ),
                AgentRole.VERIFIER,
                summary=self._summary("verify", AgentRole.VERIFIER, attempt, key),
                milestone_key=key,
            )
            state.status = verdict.milestone_status
            self._refresh_details()
            if verdict.passed:
                await self._progress(key)
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
            await self._progress(key)
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
                await self._progress(key)
            return

    async def _execute(self, state: _MilestoneState, attempt: int, use_feedback: bool) -> None:
        key = state.key
        worker = self._routes[AgentRole.WORKER]
        feedback = self._feedback_for(key)
        while True:
            compressed = self._compressed.get(key)
            out: ExecuteOutput = await self._llm(
                AgentActivities.execute,
                ExecuteInput(
                    **self._call_base(AgentRole.WORKER),
                    milestone_id=state.milestone_id,
                    milestone_key=key,
                    label=self._label(key),
                    attempt=attempt,
                    context_budget_tokens=worker.context_budget_tokens,
                    use_verifier_feedback=use_feedback,
                    human_feedback=feedback,
                    compressed_context_seq=compressed,
                ),
                AgentRole.WORKER,
                summary=self._summary("execute", AgentRole.WORKER, attempt, key),
                milestone_key=key,
            )
            if out.outcome != ExecuteOutcome.CONTEXT_TOO_LARGE:
                return
            if compressed is not None:
                raise _EndTaskError(
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
                AgentRole.COMPRESSOR,
                summary=self._summary("compress", AgentRole.COMPRESSOR, attempt, key),
                milestone_key=key,
            )
            if compressed_out.context_seq is None:
                raise _EndTaskError(TaskStatus.FAILED, FailureReason.CONTEXT_TOO_LARGE, key)
            self._compressed[key] = compressed_out.context_seq

    # ------------------------------------------------------------------ LLM calls, budget

    async def _llm(
        self,
        activity: Callable[[Any, InT], Awaitable[OutT]],
        data: InT,
        role: AgentRole,
        *,
        summary: str,
        milestone_key: str | None = None,
    ) -> OutT:
        """Run one LLM activity under the budget; pause or stop when it would pass it."""
        while True:
            if self._stop is not None:
                raise self._stop
            epoch = self._budget_epoch
            if self._over_budget():
                await self._budget_exhausted(None, milestone_key, epoch)
                continue
            out: OutT = await workflow.execute_activity_method(
                activity,
                data.model_copy(update={"budget": self._remaining()}),
                summary=summary,
                **_llm_options(),
            )
            self._add_usage(out)
            if out.blocked is not None:
                await self._budget_exhausted(out.blocked, milestone_key, epoch)
                continue
            return out

    def _remaining(self) -> BudgetRemaining:
        budget = self._budget
        tokens = None if budget.max_tokens is None else budget.max_tokens - self._totals.tokens
        cost = None if budget.max_cost_usd is None else budget.max_cost_usd - self._totals.cost_usd
        return BudgetRemaining(tokens=tokens, cost_usd=cost)

    def _over_budget(self) -> bool:
        remaining = self._remaining()
        return (remaining.tokens is not None and remaining.tokens <= 0) or (
            remaining.cost_usd is not None and remaining.cost_usd <= 0
        )

    def _add_usage(self, out: LLMCallOutput) -> None:
        usage = out.usage
        self._totals = Totals(
            input_tokens=self._totals.input_tokens + usage.input_tokens,
            output_tokens=self._totals.output_tokens + usage.output_tokens,
            cost_usd=self._totals.cost_usd + (usage.cost_usd or 0.0),
            cost_unknown=self._totals.cost_unknown or (usage.cost_usd is None and usage.tokens > 0),
        )

    async def _budget_exhausted(
        self, block: BudgetBlock | None, milestone_key: str | None, epoch: int
    ) -> None:
        if BreakpointKind.BUDGET_EXHAUSTED not in self._task.breakpoints:
            detail = (
                f"next call needs ~{block.estimated_tokens} tokens"
                if block is not None
                else "the budget is spent"
            )
            raise _EndTaskError(TaskStatus.FAILED, FailureReason.BUDGET_EXCEEDED, detail)
        reason = (
            f"the next call needs ~{block.estimated_tokens} tokens"
            + (
                f" / ${block.estimated_cost_usd:.4f}"
                if block.estimated_cost_usd is not None
                else ""
            )
            if block is not None
            else "the budget is spent"
        )
        # A parallel milestone's pause may have raised the budget meanwhile: then just retry.
        await self._breakpoint(
            BreakpointKind.BUDGET_EXHAUSTED,
            milestone_key,
            reason,
            still_needed=lambda: self._budget_epoch == epoch,
        )

    # ------------------------------------------------------------------ breakpoints

    async def _human(
        self, kind: BreakpointKind, milestone_key: str | None, reason: str
    ) -> ResumeRequest:
        decision = await self._breakpoint(kind, milestone_key, reason)
        assert decision is not None
        return decision

    async def _breakpoint(
        self,
        kind: BreakpointKind,
        milestone_key: str | None,
        reason: str,
        still_needed: Callable[[], bool] | None = None,
    ) -> ResumeRequest | None:
        """Pause at a breakpoint until resumed (or timed out); apply and record the decision.

        Raises:
            _EndTaskError: When the decision is `abort`.
        """
        task = self._task
        async with self._pause_lock:
            if self._stop is not None:
                raise self._stop
            if still_needed is not None and not still_needed():
                return None
            self._breakpoint_count += 1
            breakpoint_id = f"bp-{self._breakpoint_count}-{kind.value}" + (
                f"-{milestone_key}" if milestone_key else ""
            )
            now = workflow.now()
            timeout = (
                timedelta(seconds=task.breakpoint_timeout_seconds)
                if task.breakpoint_timeout_seconds is not None
                else None
            )
            pause = PauseState(
                breakpoint_id=breakpoint_id,
                kind=kind,
                milestone_key=milestone_key,
                reason=reason[:1000],
                hit_at=now,
                timeout_at=now + timeout if timeout is not None else None,
                default_action=task.breakpoint_default_action if timeout is not None else None,
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
                    COST_USD.name: round(self._totals.cost_usd, 6),
                }
            )
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
                summary=f"pause · {kind.value}" + (f" · {milestone_key}" if milestone_key else ""),
                **_db_options(),
            )
            timed_out = False
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
            except TimeoutError:
                timed_out = True
            decision = self._decision
            if decision is None:
                action = task.breakpoint_default_action
                if action not in ALLOWED_ACTIONS[kind]:
                    action = ResumeAction.CONTINUE
                decision = ResumeRequest(breakpoint_id=breakpoint_id, action=action)
                timed_out = True
            await self._apply_decision(pause, decision, milestone_id, timed_out)
            self._decision = None
            self._pause = None
            self._pause_epoch += 1
            self._resolved.add(breakpoint_id)
            self._status = TaskStatus.RUNNING
            self._upsert({TASK_STATUS.name: TaskStatus.RUNNING.value, AWAITING_HUMAN.name: False})
            self._refresh_details()
        if decision.action == ResumeAction.ABORT:
            raise _EndTaskError(TaskStatus.CANCELLED, FailureReason.ABORTED, decision.feedback)
        return decision

    async def _apply_decision(
        self,
        pause: PauseState,
        decision: ResumeRequest,
        milestone_id: UUID | None,
        timed_out: bool,
    ) -> None:
        task = self._task
        new_plan = self._plan
        if decision.edits is not None and self._plan is not None:
            try:
                new_plan = apply_edits(self._plan, decision.edits, self._statuses())
            except PlanValidationError as exc:  # pragma: no cover - validated by the update
                workflow.logger.warning("plan edit no longer applies: %s", exc)
                decision = decision.model_copy(update={"edits": None})
                new_plan = self._plan
        if decision.budget is not None:
            self._budget_epoch += 1
            self._budget = Budget(
                max_cost_usd=(
                    decision.budget.max_cost_usd
                    if decision.budget.max_cost_usd is not None
                    else self._budget.max_cost_usd
                ),
                max_tokens=(
                    decision.budget.max_tokens
                    if decision.budget.max_tokens is not None
                    else self._budget.max_tokens
                ),
            )
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
                plan_keys=new_plan.keys if new_plan is not None else [],
            ),
            summary=f"resume · {pause.kind.value} · {decision.action.value}",
            **_db_options(),
        )
        if decision.feedback:
            if pause.milestone_key is not None:
                self._milestone_feedback.setdefault(pause.milestone_key, []).append(
                    decision.feedback
                )
            elif decision.action != ResumeAction.RETRY:
                self._task_feedback.append(decision.feedback)
        if new_plan is not None and new_plan is not self._plan:
            previous = self._milestones
            self._milestones = {}
            for spec in new_plan.milestones:
                old = previous.get(spec.key)
                if old is not None:
                    old.title, old.depends_on = spec.title, list(spec.depends_on)
                    self._milestones[spec.key] = old
                else:
                    self._milestones[spec.key] = _MilestoneState(
                        key=spec.key,
                        title=spec.title,
                        depends_on=list(spec.depends_on),
                        milestone_id=out.milestone_ids[spec.key],
                    )
            self._plan = new_plan
            self._compressed.clear()

    # ------------------------------------------------------------------ small activities

    async def _mark(self, state: _MilestoneState, status: MilestoneStatus, reason: str) -> None:
        state.status = status
        self._refresh_details()
        await workflow.execute_activity_method(
            TaskActivities.mark_milestone,
            MilestoneMarkInput(
                task_id=self._task.task_id,
                session_id=self._task.session_id,
                milestone_id=state.milestone_id,
                milestone_key=state.key,
                status=status,
                reason=reason,
            ),
            summary=f"{self._label(state.key)} · {status.value}",
            **_db_options(),
        )

    async def _progress(self, key: str) -> None:
        self._upsert({COST_USD.name: round(self._totals.cost_usd, 6)})
        await workflow.execute_activity_method(
            TaskActivities.record_progress,
            ProgressInput(
                task_id=self._task.task_id,
                session_id=self._task.session_id,
                milestone_key=key,
                counts=self._counts(),
                total_milestones=len(self._milestones),
                totals=self._totals,
            ),
            summary=f"progress · {self._label(key)} {self._milestones[key].status.value}",
            **_db_options(),
        )

    async def _finish_cancelled(self) -> None:
        self._status = TaskStatus.CANCELLED
        await self._finish(_EndTaskError(TaskStatus.CANCELLED, FailureReason.CANCELLED))

    async def _finish(self, stop: _EndTaskError) -> None:
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
        await workflow.execute_activity_method(
            TaskActivities.finish_task,
            FinishInput(
                task_id=self._task.task_id,
                session_id=self._task.session_id,
                status=stop.status,
                failure_reason=stop.reason or None,
                error=stop.error,
                totals=self._totals,
                counts=self._counts(),
            ),
            summary=f"finish · {stop.status.value}",
            **_db_options(),
        )

    # ------------------------------------------------------------------ helpers

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

    def _ordered(self) -> list[_MilestoneState]:
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

    def _summary(
        self, step: str, role: AgentRole, attempt: int | None = None, key: str | None = None
    ) -> str:
        parts = [self._label(key)] if key is not None else []
        parts += [step, self._routes[role].model if role in self._routes else role.value]
        if attempt is not None:
            parts.append(f"attempt {attempt}")
        return " · ".join(parts)

    def _update_current(self) -> None:
        current = [k for k in self._plan_keys() if k in self._running]
        self._upsert({CURRENT_MILESTONE.name: ",".join(current)[:250] or None})
        self._refresh_details()

    def _upsert(self, values: dict[str, Any]) -> None:
        # Only changed values: every upsert is a history event.
        keys: dict[str, SearchAttributeKey[Any]] = {
            TASK_STATUS.name: TASK_STATUS,
            USER_ID.name: USER_ID,
            COMPLEXITY.name: COMPLEXITY,
            AWAITING_HUMAN.name: AWAITING_HUMAN,
            COST_USD.name: COST_USD,
            CURRENT_MILESTONE.name: CURRENT_MILESTONE,
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        for name, value in values.items():
            if self._search_attributes.get(name, _UNSET) == value:
                continue
            self._search_attributes[name] = value
            key = keys[name]
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _refresh_details(self) -> None:
        rows = [
            "| # | milestone | status | attempts |",
            "|---|---|---|---|",
        ]
        ordered = self._ordered()
        for index, m in enumerate(ordered[:DETAILS_MAX_ROWS], start=1):
            rows.append(f"| {index} | {m.key} | {m.status.value} | {m.attempts} |")
        if len(ordered) > DETAILS_MAX_ROWS:
            rows.append(f"| … | {len(ordered) - DETAILS_MAX_ROWS} more | | |")
        header = f"**{self._status.value}**"
        if self._pause is not None:
            header += f" at `{self._pause.breakpoint_id}`"
        totals = self._totals
        header += f" · {totals.input_tokens}+{totals.output_tokens} tokens · ${totals.cost_usd:.4f}"
        workflow.set_current_details("\n".join([header, "", *rows]))


_UNSET = object()


def _error_text(exc: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        parts.append(str(current))
        current = current.__cause__
    return " <- ".join(p for p in parts if p)[:2000]
