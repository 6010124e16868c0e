"""Breakpoint rules: which resume fits an open pause, and what a pause looks like.

Pure helpers, no workflow APIs: `TaskWorkflow` validates the `resume` update with
`check_resume` (a rejected update leaves no history), builds its `PauseState` with
`open_pause` and decides what a timeout does with `on_timeout`. Which actions fit which
kind of breakpoint is the shared contract's (`agent.contract.breakpoints.ALLOWED_ACTIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.outcome import FailureReason

with workflow.unsafe.imports_passed_through():
    from agent.contract.breakpoints import ALLOWED_ACTIONS, ResumeAction
    from agent.contract.errors import WorkflowErrorType
    from agent.contract.plan import Plan, PlanValidationError, apply_edits
    from agent.contract.task import PauseState, ResumeRequest, ToolCallPause
    from agent.events.types import BreakpointKind, MilestoneStatus

REASON_MAX_CHARS = 1000
"""A breakpoint's reason is cut to this length."""


def check_resume(
    request: ResumeRequest,
    *,
    pause: PauseState | None,
    ending: bool,
    already_decided: bool,
    plan: Plan | None,
    statuses: Mapping[str, MilestoneStatus],
    max_milestones: int,
) -> None:
    """Reject a resume that does not fit the open breakpoint.

    Args:
        request: The `resume` update's argument.
        pause: Where the task waits (None when it does not).
        ending: Whether the task is already ending.
        already_decided: Whether the open breakpoint already has a decision.
        plan: The current plan (None before planning).
        statuses: The milestones' statuses, which decide what a plan edit may touch.
        max_milestones: The largest plan the task accepts (an edit past it is invalid).

    Raises:
        ApplicationError: Task not paused, wrong breakpoint id, an action that does
            not fit the breakpoint, or an invalid plan edit.
    """
    if pause is None or ending:
        raise ApplicationError("the task is not paused", type=WorkflowErrorType.TASK_NOT_PAUSED)
    if already_decided:
        raise ApplicationError(
            "this breakpoint was already resumed", type=WorkflowErrorType.ALREADY_RESUMED
        )
    if request.breakpoint_id != pause.breakpoint_id:
        raise ApplicationError(
            f"the task waits at breakpoint {pause.breakpoint_id!r}, not {request.breakpoint_id!r}",
            type=WorkflowErrorType.WRONG_BREAKPOINT,
        )
    if request.action not in ALLOWED_ACTIONS[pause.kind]:
        allowed = ", ".join(sorted(a.value for a in ALLOWED_ACTIONS[pause.kind]))
        raise ApplicationError(
            f"action {request.action.value!r} does not fit the {pause.kind.value} "
            f"breakpoint (allowed: {allowed})",
            type=WorkflowErrorType.INVALID_ACTION,
        )
    if request.action == ResumeAction.EDIT and request.arguments is None:
        raise ApplicationError(
            "edit needs the call's new arguments (`arguments`)",
            type=WorkflowErrorType.INVALID_ACTION,
        )
    if request.arguments is not None and request.action != ResumeAction.EDIT:
        raise ApplicationError(
            "`arguments` go with the edit action at a before_tool breakpoint",
            type=WorkflowErrorType.INVALID_ACTION,
        )
    if request.edits is None:
        return
    if plan is None:
        raise ApplicationError(
            "there is no plan to edit yet", type=WorkflowErrorType.INVALID_PLAN_EDIT
        )
    try:
        apply_edits(plan, request.edits, statuses, max_milestones=max_milestones)
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


def breakpoint_timeout(timeout_seconds: float | None) -> timedelta | None:
    """How long a pause waits for a person (None: forever)."""
    return timedelta(seconds=timeout_seconds) if timeout_seconds is not None else None


def breakpoint_id(number: int, kind: BreakpointKind, milestone_key: str | None) -> str:
    """The id of the task's `number`-th pause, such as `bp-3-before_milestone-m2`."""
    return f"bp-{number}-{kind.value}" + (f"-{milestone_key}" if milestone_key else "")


def open_pause(
    pause_id: str,
    kind: BreakpointKind,
    milestone_key: str | None,
    reason: str,
    *,
    now: datetime,
    timeout: timedelta | None,
    default_action: ResumeAction | None,
    tool_call: ToolCallPause | None = None,
    scope: str | None = None,
    resets_at: datetime | None = None,
) -> PauseState:
    """The state of a pause, as the task's clients see it.

    Args:
        pause_id: Its breakpoint id (`breakpoint_id`).
        kind: The kind of breakpoint.
        milestone_key: The milestone it concerns, if any.
        reason: Why the task pauses (cut to `REASON_MAX_CHARS`).
        now: The workflow's time.
        timeout: How long it waits for a person (None: forever).
        default_action: The action its timeout applies (shown only with a timeout).
        tool_call: At `before_tool`, the call waiting for approval.
        scope: At `budget_exhausted`, `user_daily` when the user's daily limit stopped it.
        resets_at: With `scope`, when the user's window resets.

    Returns:
        The pause.
    """
    return PauseState(
        breakpoint_id=pause_id,
        kind=kind,
        milestone_key=milestone_key,
        reason=reason[:REASON_MAX_CHARS],
        hit_at=now,
        timeout_at=now + timeout if timeout is not None else None,
        default_action=default_action if timeout is not None else None,
        tool_call=tool_call,
        scope=scope,
        resets_at=resets_at,
    )


def timeout_action(kind: BreakpointKind, default_action: ResumeAction) -> ResumeAction:
    """The task's default action when it fits the kind, else `continue`.

    Before the `breakpoint-timeout-ends` patch this alone was a timeout's action.
    """
    return default_action if default_action in ALLOWED_ACTIONS[kind] else ResumeAction.CONTINUE


def place(kind: BreakpointKind, milestone_key: str | None) -> str:
    """Where a breakpoint stands: its kind and milestone (every pause there has a new id)."""
    return f"{kind.value}:{milestone_key or ''}"


@dataclass(frozen=True)
class TimeoutOutcome:
    """What a breakpoint's timeout does: the action recorded, and the task's end if any."""

    action: ResumeAction
    failure: FailureReason | None = None
    error: str | None = None


def on_timeout(
    kind: BreakpointKind,
    pause_id: str,
    default_action: ResumeAction,
    *,
    defaulted_here: bool,
) -> TimeoutOutcome:
    """What the timeout of a pause does; it always leads somewhere new.

    At `budget_exhausted` nothing but a person can raise the budget, so `continue` would
    pause again at once: the timeout aborts and the task fails with `budget_exceeded`, as
    without the breakpoint. Elsewhere the task's default action applies (`continue` when
    it does not fit the kind), but only once per place: if the default already led back
    here (a `retry` after the plan, after a milestone or on its failure runs the step
    again, which ends at the same breakpoint), the task fails with `breakpoint_timed_out`.

    Args:
        kind: The kind of breakpoint.
        pause_id: Its breakpoint id (for the failure's message).
        default_action: The task's default action.
        defaulted_here: Whether a default action was applied at this place before
            (and nobody answered here since).

    Returns:
        The action to record (with `timed_out`) and the failure that ends the task, if any.
    """
    if kind == BreakpointKind.BEFORE_TOOL:
        # Nobody approved the call: it does not run; the model hears it was denied.
        return TimeoutOutcome(ResumeAction.DENY)
    if kind == BreakpointKind.BUDGET_EXHAUSTED:
        return TimeoutOutcome(
            ResumeAction.ABORT,
            FailureReason.BUDGET_EXCEEDED,
            f"nobody raised the budget before {pause_id} timed out",
        )
    action = timeout_action(kind, default_action)
    if defaulted_here and action != ResumeAction.ABORT:
        return TimeoutOutcome(
            ResumeAction.ABORT,
            FailureReason.BREAKPOINT_TIMED_OUT,
            f"nobody answered {pause_id} in time, and its default action "
            f"{action.value!r} already led back to this breakpoint once",
        )
    return TimeoutOutcome(action)
