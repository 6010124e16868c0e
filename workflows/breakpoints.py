"""Breakpoints: pause for a person, validate and apply their resume decision.

A breakpoint pauses the task (`pause_task`), waits for the `resume` update (or its
timeout and default action), applies the decision (plan edits, budget, feedback) and
records it (`record_decision`). Only one breakpoint is open at a time: parallel
milestones queue on `_pause_lock`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.state import EndTaskError, FailureReason, MilestoneState, db_options
from workflows.ui import WorkflowUi

with workflow.unsafe.imports_passed_through():
    from activities.models import DecisionInput, DecisionOutput, PauseInput
    from activities.task_activities import TaskActivities
    from agent.contract.breakpoints import ALLOWED_ACTIONS, ResumeAction
    from agent.contract.errors import WorkflowErrorType
    from agent.contract.plan import PlanValidationError, apply_edits
    from agent.contract.task import Budget, PauseState, ResumeRequest
    from agent.events.types import BreakpointKind, TaskStatus
    from agent.temporal import AWAITING_HUMAN, COST_USD, TASK_STATUS

REASON_MAX_CHARS = 1000
"""A breakpoint's reason is cut to this length."""


class WorkflowBreakpoints(WorkflowUi):
    """Pausing at breakpoints and applying resume decisions."""

    def _check_resume(self, request: ResumeRequest) -> None:
        """Reject a resume that does not fit the open breakpoint.

        Raises:
            ApplicationError: Task not paused, wrong breakpoint id, an action that does
                not fit the breakpoint, or an invalid plan edit.
        """
        pause = self._pause
        if pause is None or self._stop is not None:
            raise ApplicationError("the task is not paused", type=WorkflowErrorType.TASK_NOT_PAUSED)
        if self._decision is not None:
            raise ApplicationError(
                "this breakpoint was already resumed", type=WorkflowErrorType.ALREADY_RESUMED
            )
        if request.breakpoint_id != pause.breakpoint_id:
            raise ApplicationError(
                f"the task waits at breakpoint {pause.breakpoint_id!r}, "
                f"not {request.breakpoint_id!r}",
                type=WorkflowErrorType.WRONG_BREAKPOINT,
            )
        if request.action not in ALLOWED_ACTIONS[pause.kind]:
            allowed = ", ".join(sorted(a.value for a in ALLOWED_ACTIONS[pause.kind]))
            raise ApplicationError(
                f"action {request.action.value!r} does not fit a {pause.kind.value} "
                f"breakpoint (allowed: {allowed})",
                type=WorkflowErrorType.INVALID_ACTION,
            )
        if request.edits is None:
            return
        if self._plan is None:
            raise ApplicationError(
                "there is no plan to edit yet", type=WorkflowErrorType.INVALID_PLAN_EDIT
            )
        try:
            apply_edits(self._plan, request.edits, self._statuses())
        except PlanValidationError as exc:
            raise ApplicationError(
                f"invalid plan edit: {exc}", type=WorkflowErrorType.INVALID_PLAN_EDIT
            ) from exc
        if pause.milestone_key is not None and pause.milestone_key in request.edits.remove:
            raise ApplicationError(
                "cannot remove the milestone the task is paused at; use skip",
                type=WorkflowErrorType.INVALID_PLAN_EDIT,
            )
        if pause.kind == BreakpointKind.AFTER_PLAN and request.action == ResumeAction.RETRY:
            raise ApplicationError(
                "retry after the plan asks the planner for a new plan; send edits with "
                "continue, or feedback with retry",
                type=WorkflowErrorType.INVALID_PLAN_EDIT,
            )

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
                reason=reason[:REASON_MAX_CHARS],
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
                **db_options(),
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
            raise EndTaskError(TaskStatus.CANCELLED, FailureReason.ABORTED, decision.feedback)
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
            **db_options(),
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
                    self._milestones[spec.key] = MilestoneState(
                        key=spec.key,
                        title=spec.title,
                        depends_on=list(spec.depends_on),
                        milestone_id=out.milestone_ids[spec.key],
                    )
            self._plan = new_plan
            self._compressed.clear()
