"""Breakpoint rules: the resume actions and which of them fit which breakpoint kind.

The workflow's resume validator, the API's pause state, the CLI prompt and the web console
all read `ALLOWED_ACTIONS` from here (the console through the `allowed_actions` field of the
pause state the API serves).
"""

from __future__ import annotations

from enum import StrEnum

from agent.events.types import BreakpointKind


class ResumeAction(StrEnum):
    """What a person decides at a breakpoint."""

    CONTINUE = "continue"
    RETRY = "retry"
    SKIP = "skip"
    ABORT = "abort"
    APPROVE = "approve"
    DENY = "deny"
    EDIT = "edit"


ALLOWED_ACTIONS: dict[BreakpointKind, tuple[ResumeAction, ...]] = {
    # `retry` after the plan asks the planner again with the person's feedback.
    BreakpointKind.AFTER_PLAN: (ResumeAction.CONTINUE, ResumeAction.RETRY, ResumeAction.ABORT),
    BreakpointKind.BEFORE_MILESTONE: (
        ResumeAction.CONTINUE,
        ResumeAction.SKIP,
        ResumeAction.ABORT,
    ),
    # `retry` after a passed milestone runs it again with the person's feedback.
    BreakpointKind.AFTER_MILESTONE: (
        ResumeAction.CONTINUE,
        ResumeAction.RETRY,
        ResumeAction.ABORT,
    ),
    # `continue` accepts the failure: dependants cannot run and the task ends failed.
    BreakpointKind.ON_FAILURE: (
        ResumeAction.RETRY,
        ResumeAction.SKIP,
        ResumeAction.CONTINUE,
        ResumeAction.ABORT,
    ),
    BreakpointKind.BUDGET_EXHAUSTED: (ResumeAction.CONTINUE, ResumeAction.ABORT),
    # `deny` returns the person's feedback to the model as the tool's result; `edit` runs
    # the call with the person's arguments (checked against the tool's input schema).
    BreakpointKind.BEFORE_TOOL: (
        ResumeAction.APPROVE,
        ResumeAction.DENY,
        ResumeAction.EDIT,
        ResumeAction.ABORT,
    ),
}
"""Which resume actions fit which breakpoint kind, in the order a person is offered them."""


def allowed_actions(kind: BreakpointKind) -> tuple[ResumeAction, ...]:
    """The resume actions that fit a breakpoint of `kind` (plan edits fit every kind)."""
    return ALLOWED_ACTIONS[kind]
