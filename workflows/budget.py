"""Budgets: every LLM call is checked against what the task may still spend.

Before each call the workflow checks its totals against the budget; the activity checks
its own estimate (prompt + max output) and answers `blocked` instead of calling. Either
way the task pauses at a `budget_exhausted` breakpoint (a person may raise the limit) or,
without that breakpoint, stops with `budget_exceeded`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow

from workflows.breakpoints import WorkflowBreakpoints
from workflows.state import EndTaskError, FailureReason, llm_options

with workflow.unsafe.imports_passed_through():
    from activities.models import BudgetBlock, BudgetRemaining, LLMCallInput, LLMCallOutput
    from agent.contract.task import Totals
    from agent.events.types import BreakpointKind, TaskStatus

OutT = TypeVar("OutT", bound=LLMCallOutput)
InT = TypeVar("InT", bound=LLMCallInput)


class WorkflowBudget(WorkflowBreakpoints):
    """LLM calls under the budget, and the usage they add up to."""

    async def _llm(
        self,
        activity: Callable[[Any, InT], Awaitable[OutT]],
        data: InT,
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
                **llm_options(),
            )
            self._add_usage(out)
            if workflow.cancellation_reason() is not None:
                # A cancel that reached an activity about to finish is erased when it
                # completes anyway (WAIT_CANCELLATION_COMPLETED): honour it here.
                raise asyncio.CancelledError
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
            raise EndTaskError(TaskStatus.FAILED, FailureReason.BUDGET_EXCEEDED, detail)
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
