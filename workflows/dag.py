"""The milestone DAG: run every ready milestone, up to `max_parallel` at once.

Per milestone: optional `before_milestone` breakpoint -> execute (compressing the context
first when it is too large) -> verify -> retry with the verifier's feedback up to
`max_attempts` -> optional `after_milestone` / `on_failure` breakpoints.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.budget import WorkflowBudget
from workflows.state import EndTaskError, FailureReason, MilestoneState, db_options

with workflow.unsafe.imports_passed_through():
    from activities.agent_activities import AgentActivities
    from activities.models import (
        CompressInput,
        CompressOutput,
        ExecuteInput,
        ExecuteOutcome,
        ExecuteOutput,
        MilestoneMarkInput,
        VerifyInput,
        VerifyOutput,
    )
    from activities.task_activities import TaskActivities
    from agent.contract.breakpoints import ResumeAction
    from agent.contract.plan import blocked_milestones, ready_milestones
    from agent.events.types import AgentRole, BreakpointKind, MilestoneStatus, TaskStatus

COMPRESSION_TARGET_RATIO = 0.5
"""A compressed context aims at this share of the worker model's context budget."""

DONE_STATUSES = frozenset({MilestoneStatus.PASSED, MilestoneStatus.FAILED})
"""Verdicts after which the verifier's activity has reported the task's progress."""


class WorkflowDag(WorkflowBudget):
    """Scheduling the milestones and running each one's attempts."""

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
            summary=self._summary("verify", AgentRole.VERIFIER, attempt, state.key),
            milestone_key=state.key,
        )
        state.status = verdict.milestone_status
        self._refresh_details()
        if state.status in DONE_STATUSES:
            self._upsert_cost()
        return verdict

    async def _execute(self, state: MilestoneState, attempt: int, use_feedback: bool) -> None:
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
                summary=self._summary("compress", AgentRole.COMPRESSOR, attempt, key),
                milestone_key=key,
            )
            if compressed_out.context_seq is None:
                raise EndTaskError(TaskStatus.FAILED, FailureReason.CONTEXT_TOO_LARGE, key)
            self._compressed[key] = compressed_out.context_seq

    async def _mark(self, state: MilestoneState, status: MilestoneStatus, reason: str) -> None:
        """Apply a transition the workflow decided; a skip also records the task's progress."""
        state.status = status
        self._refresh_details()
        skipped = status == MilestoneStatus.SKIPPED
        if skipped:
            self._upsert_cost()
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
            **db_options(),
        )
