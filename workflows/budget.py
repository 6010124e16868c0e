"""Budget arithmetic of the task workflow: pure, no workflow APIs.

Before each LLM call `TaskWorkflow` compares its totals with the budget; the activity
checks its own estimate (prompt + max output) against what it is told remains (its cap)
and answers `blocked` instead of calling. When nothing is left the task pauses at a
`budget_exhausted` breakpoint (a person may raise the limit) or, without that
breakpoint, stops with `budget_exceeded`.

Parallel milestones call at the same time, so a call's cap is not simply what remains:
each call reserves a cap (`grant`) until it settles, and the next call's room is the
remainder less those reservations (`available`). A call whose estimate does not fit waits
for calls in flight to settle; only with nothing in flight does a refusal mean the
budget is exhausted. The spend then stays within the limit up to the activities' own
estimation error (prompt token counts against the provider's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.calls import MAX_OUTPUT_TOKENS
    from activities.models import BudgetBlock, BudgetRemaining, CallUsage, LLMCallOutput
    from agent.contract.task import Budget, Totals
    from agent.events.types import AgentRole


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
        estimated=totals.estimated or usage.estimated,
        tool_calls=totals.tool_calls,
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


# --------------------------------------------------------------------------- reservations


@dataclass
class Reservations:
    """What the LLM calls in flight may spend: each holds its cap until it settles."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    settled: int = 0
    """Counts settled calls: a call waiting for room wakes when it changes."""

    def hold(self, cap: BudgetRemaining) -> None:
        """Reserve a starting call's cap."""
        self.calls += 1
        self.tokens += cap.tokens or 0
        self.cost_usd += cap.cost_usd or 0.0

    def release(self, cap: BudgetRemaining) -> None:
        """Give back a settled call's cap (its usage is in the totals by now)."""
        self.calls -= 1
        self.tokens -= cap.tokens or 0
        self.cost_usd -= cap.cost_usd or 0.0
        self.settled += 1


def available(budget: Budget, totals: Totals, reserved: Reservations) -> BudgetRemaining:
    """What a new call may reserve: the remainder less the caps of the calls in flight."""
    left = remaining(budget, totals)
    return BudgetRemaining(
        tokens=None if left.tokens is None else left.tokens - reserved.tokens,
        cost_usd=None if left.cost_usd is None else left.cost_usd - reserved.cost_usd,
    )


@dataclass
class CallSizes:
    """What the workflow has seen of its calls' sizes, to estimate the next ones.

    An activity estimates a call as its prompt plus the most output it may produce
    (`MAX_OUTPUT_TOKENS` of its role), priced at its model's prices; the workflow cannot
    read prompts or prices, so it estimates a role's next call from the largest prompt
    that role sent so far (any role's before its first call) and the model's highest
    USD per token seen. A wrong estimate costs no spend: the activity refuses a call
    above its cap and answers with its exact estimate, which the next try reserves.
    """

    prompt_tokens: dict[AgentRole, int] = field(default_factory=dict)
    usd_per_token: dict[str, float] = field(default_factory=dict)

    def learn(self, role: AgentRole, model: str, out: LLMCallOutput) -> None:
        """Remember the size of a finished or refused call."""
        if out.blocked is not None:
            prompt = out.blocked.estimated_tokens - MAX_OUTPUT_TOKENS[role]
            self._price(model, out.blocked.estimated_cost_usd, out.blocked.estimated_tokens)
        else:
            prompt = out.usage.input_tokens
            self._price(model, out.usage.cost_usd, out.usage.tokens)
        self.prompt_tokens[role] = max(prompt, self.prompt_tokens.get(role, 0))

    def _price(self, model: str, cost: float | None, tokens: int) -> None:
        if cost is not None and tokens > 0:
            self.usd_per_token[model] = max(cost / tokens, self.usd_per_token.get(model, 0.0))

    def estimate(self, role: AgentRole, model: str) -> BudgetRemaining:
        """The next call's estimate; a part stays None while nothing was learnt for it."""
        prompt = self.prompt_tokens.get(role, max(self.prompt_tokens.values(), default=None))
        if prompt is None:
            return BudgetRemaining()
        tokens = prompt + MAX_OUTPUT_TOKENS[role]
        rate = self.usd_per_token.get(model, max(self.usd_per_token.values(), default=None))
        return BudgetRemaining(tokens=tokens, cost_usd=None if rate is None else tokens * rate)


@dataclass(frozen=True)
class Grant:
    """The cap a call may spend (what the activity is told remains) and what it means.

    `final`: the call got all that is left while no other call runs, so a refusal means
    the budget is exhausted (otherwise the call waits for room, or asks again).
    """

    cap: BudgetRemaining
    final: bool


def grant(
    budget: Budget,
    room: BudgetRemaining,
    need: BudgetRemaining,
    *,
    in_flight: int,
    alone: bool,
) -> Grant | None:
    """The cap of a call about to start, or None when it must wait for calls in flight.

    Args:
        budget: The task's limits.
        room: What is left after the reservations of the calls in flight (`available`).
        need: The call's estimate (None parts: unknown).
        in_flight: How many LLM calls of the task run now.
        alone: No call in flight and no other milestone running: nothing competes, so
            the call gets all that is left, exactly as a sequential task always did.

    Returns:
        Its estimate when that fits; all that is left when it does not fit (or is
        unknown) and nothing else runs; otherwise None.
    """
    if alone:
        return Grant(cap=room, final=True)
    limited = [
        (need.tokens, room.tokens) if budget.max_tokens is not None else None,
        (need.cost_usd, room.cost_usd) if budget.max_cost_usd is not None else None,
    ]
    fits = all(
        pair is None or (pair[0] is not None and pair[1] is not None and pair[0] <= pair[1])
        for pair in limited
    )
    if fits:
        cap = BudgetRemaining(
            tokens=need.tokens if budget.max_tokens is not None else None,
            cost_usd=need.cost_usd if budget.max_cost_usd is not None else None,
        )
        return Grant(cap=cap, final=False)
    if in_flight == 0:
        return Grant(cap=room, final=True)
    return None


def at_least(estimate: BudgetRemaining, floor: BudgetBlock | None) -> BudgetRemaining:
    """An estimate raised to a refused call's own exact estimate (it asks again with that)."""
    if floor is None:
        return estimate
    return BudgetRemaining(
        tokens=max(estimate.tokens or 0, floor.estimated_tokens),
        cost_usd=(
            estimate.cost_usd
            if floor.estimated_cost_usd is None
            else max(estimate.cost_usd or 0.0, floor.estimated_cost_usd)
        ),
    )


def cost_unknown_under_usd_budget(budget: Budget, totals: Totals) -> bool:
    """A call without a price ran under a USD limit: the budget can no longer be checked."""
    return budget.max_cost_usd is not None and totals.cost_unknown
