"""The workflow's pure rules, without Temporal: budget reservations and breakpoint timeouts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.calls import MAX_OUTPUT_TOKENS
from activities.models import BudgetBlock, BudgetRemaining, CallUsage, LLMCallOutput
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget, PauseState, Totals
from agent.events.types import AgentRole, BreakpointKind
from workflows import breakpoints, budget
from workflows.outcome import FailureReason

TOKENS = Budget(max_tokens=10_000)


def test_a_call_alone_gets_all_that_is_left() -> None:
    room = BudgetRemaining(tokens=7_000)

    granted = budget.grant(TOKENS, room, BudgetRemaining(), in_flight=0, alone=True)

    assert granted == budget.Grant(cap=room, final=True)


def test_a_call_beside_others_reserves_its_estimate_when_it_fits() -> None:
    granted = budget.grant(
        TOKENS,
        BudgetRemaining(tokens=7_000),
        BudgetRemaining(tokens=4_500, cost_usd=0.01),
        in_flight=2,
        alone=False,
    )

    # Only the limited part is capped: no USD limit, no USD cap.
    assert granted == budget.Grant(cap=BudgetRemaining(tokens=4_500), final=False)


def test_a_call_that_does_not_fit_waits_while_others_run() -> None:
    need = BudgetRemaining(tokens=4_500)

    waiting = budget.grant(TOKENS, BudgetRemaining(tokens=3_000), need, in_flight=1, alone=False)
    last = budget.grant(TOKENS, BudgetRemaining(tokens=3_000), need, in_flight=0, alone=False)

    assert waiting is None
    assert last == budget.Grant(cap=BudgetRemaining(tokens=3_000), final=True)


def test_an_unknown_estimate_waits_for_room_like_one_that_does_not_fit() -> None:
    granted = budget.grant(
        Budget(max_cost_usd=1.0),
        BudgetRemaining(cost_usd=0.5),
        BudgetRemaining(tokens=4_500),
        in_flight=1,
        alone=False,
    )

    assert granted is None


def test_available_room_excludes_the_calls_in_flight() -> None:
    reserved = budget.Reservations()
    reserved.hold(BudgetRemaining(tokens=4_000))
    reserved.hold(BudgetRemaining(tokens=3_000))
    reserved.release(BudgetRemaining(tokens=3_000))

    room = budget.available(TOKENS, Totals(input_tokens=1_000, output_tokens=500), reserved)

    assert room == BudgetRemaining(tokens=4_500)
    assert (reserved.calls, reserved.settled) == (1, 1)


def test_call_sizes_estimate_from_the_largest_prompt_and_the_max_output() -> None:
    sizes = budget.CallSizes()
    assert sizes.estimate(AgentRole.WORKER, "m") == BudgetRemaining()

    sizes.learn(
        AgentRole.PLANNER, "m", LLMCallOutput(usage=CallUsage(input_tokens=300, cost_usd=0.0003))
    )
    guess = sizes.estimate(AgentRole.WORKER, "m")
    sizes.learn(
        AgentRole.WORKER,
        "m",
        LLMCallOutput(
            blocked=BudgetBlock(
                estimated_tokens=900 + MAX_OUTPUT_TOKENS[AgentRole.WORKER],
                estimated_cost_usd=0.01,
                remaining=BudgetRemaining(tokens=0),
            )
        ),
    )
    learnt = sizes.estimate(AgentRole.WORKER, "m")

    assert guess.tokens == 300 + MAX_OUTPUT_TOKENS[AgentRole.WORKER]
    assert learnt.tokens == 900 + MAX_OUTPUT_TOKENS[AgentRole.WORKER]
    assert learnt.cost_usd == pytest.approx(0.01)


def test_a_refused_call_asks_again_with_at_least_its_own_estimate() -> None:
    block = BudgetBlock(
        estimated_tokens=5_000, estimated_cost_usd=0.02, remaining=BudgetRemaining(tokens=1)
    )

    raised = budget.at_least(BudgetRemaining(tokens=4_000, cost_usd=0.03), block)

    assert raised == BudgetRemaining(tokens=5_000, cost_usd=0.03)


def test_cost_unknown_only_matters_under_a_usd_limit() -> None:
    unknown = Totals(input_tokens=10, cost_unknown=True)

    assert budget.cost_unknown_under_usd_budget(Budget(max_cost_usd=1.0), unknown)
    assert not budget.cost_unknown_under_usd_budget(TOKENS, unknown)


def pause_at(kind: BreakpointKind) -> PauseState:
    return breakpoints.open_pause(
        breakpoints.breakpoint_id(1, kind, "m1"),
        kind,
        "m1",
        "why",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        timeout=breakpoints.breakpoint_timeout(60),
        default_action=ResumeAction.CONTINUE,
    )


@pytest.mark.parametrize("default", list(ResumeAction))
def test_a_budget_exhausted_timeout_always_aborts_as_budget_exceeded(
    default: ResumeAction,
) -> None:
    pause = pause_at(BreakpointKind.BUDGET_EXHAUSTED)

    outcome = breakpoints.on_timeout(pause.kind, pause.breakpoint_id, default, defaulted_here=False)

    assert (outcome.action, outcome.failure) == (ResumeAction.ABORT, FailureReason.BUDGET_EXCEEDED)


def test_a_default_applies_once_per_place_then_the_task_fails() -> None:
    pause = pause_at(BreakpointKind.AFTER_MILESTONE)

    first = breakpoints.on_timeout(
        pause.kind, pause.breakpoint_id, ResumeAction.RETRY, defaulted_here=False
    )
    again = breakpoints.on_timeout(
        pause.kind, pause.breakpoint_id, ResumeAction.RETRY, defaulted_here=True
    )

    assert first == breakpoints.TimeoutOutcome(ResumeAction.RETRY)
    assert (again.action, again.failure) == (
        ResumeAction.ABORT,
        FailureReason.BREAKPOINT_TIMED_OUT,
    )
    assert pause.breakpoint_id in (again.error or "")


def test_a_default_that_does_not_fit_the_kind_continues() -> None:
    outcome = breakpoints.on_timeout(
        BreakpointKind.BEFORE_MILESTONE,
        "bp-1-before_milestone-m1",
        ResumeAction.RETRY,
        defaulted_here=False,
    )

    assert outcome == breakpoints.TimeoutOutcome(ResumeAction.CONTINUE)
