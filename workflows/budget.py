"""Budget arithmetic of the task workflow: pure, no workflow APIs.

Before each LLM call `TaskWorkflow` compares its totals with the budget; the activity
checks its own estimate (prompt + max output) against what it is told remains and answers
`blocked` instead of calling. Either way the task pauses at a `budget_exhausted`
breakpoint (a person may raise the limit) or, without that breakpoint, stops with
`budget_exceeded`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import BudgetBlock, BudgetRemaining, CallUsage
    from agent.contract.task import Budget, Totals


def remaining(budget: Budget, totals: Totals) -> BudgetRemaining:
    """What the task may still spend (None: unlimited)."""
    tokens = None if budget.max_tokens is None else budget.max_tokens - totals.tokens
    cost = None if budget.max_cost_usd is None else budget.max_cost_usd - totals.cost_usd
    return BudgetRemaining(tokens=tokens, cost_usd=cost)


def is_spent(left: BudgetRemaining) -> bool:
    """Whether nothing is left of a limited budget."""
    return (left.tokens is not None and left.tokens <= 0) or (
        left.cost_usd is not None and left.cost_usd <= 0
    )


def add_usage(totals: Totals, usage: CallUsage) -> Totals:
    """The totals after one more call; a call without a price marks the cost unknown."""
    return Totals(
        input_tokens=totals.input_tokens + usage.input_tokens,
        output_tokens=totals.output_tokens + usage.output_tokens,
        cost_usd=totals.cost_usd + (usage.cost_usd or 0.0),
        cost_unknown=totals.cost_unknown or (usage.cost_usd is None and usage.tokens > 0),
    )


def raised_budget(current: Budget, requested: Budget) -> Budget:
    """The budget after a person's resume: each limit they gave replaces the current one."""
    return Budget(
        max_cost_usd=(
            requested.max_cost_usd if requested.max_cost_usd is not None else current.max_cost_usd
        ),
        max_tokens=requested.max_tokens if requested.max_tokens is not None else current.max_tokens,
    )


def exhausted_reason(block: BudgetBlock | None) -> str:
    """The reason shown at a `budget_exhausted` breakpoint."""
    if block is None:
        return "the budget is spent"
    cost = f" / ${block.estimated_cost_usd:.4f}" if block.estimated_cost_usd is not None else ""
    return f"the next call needs ~{block.estimated_tokens} tokens{cost}"


def exceeded_detail(block: BudgetBlock | None) -> str:
    """The `error` of a task stopped with `budget_exceeded` (no breakpoint to pause at)."""
    if block is None:
        return "the budget is spent"
    return f"next call needs ~{block.estimated_tokens} tokens"
