"""The user's daily spend window as the task workflow tracks it: pure, no workflow APIs.

Before each LLM call `TaskWorkflow` sends the window of the call's UTC day; the call's
activity refuses it when the user's spend in that window reached their daily limit
(`BudgetBlock.user_daily`). The task then pauses at `budget_exhausted` until the window
resets (a durable timer), or fails, per `AGENT_SPEND_LIMIT_ACTION`.

Spend is recorded on task rows, and a task counts in the window it was created in. A
task that runs past midnight would then spend without limit in the next day; instead it
remembers its usage when it first calls in a new window (`carried_*`), and only what it
spent since counts in that window. Its usage of calls still in flight at midnight counts
in the day before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agent.contract.spend import SpendWindow, day_window
    from agent.contract.task import Totals

MIN_PAUSE = timedelta(seconds=1)
"""The shortest wait of a pause at the limit (the reset may be a moment away)."""


@dataclass
class WindowTracker:
    """The window the task last called in, and its usage when it first did."""

    window: SpendWindow | None = None

    def window_for(self, now: datetime, totals: Totals) -> SpendWindow:
        """The window of a call made at `now`; a new day starts a new one at `totals`.

        Args:
            now: The workflow's time.
            totals: The task's usage so far.

        Returns:
            The window to send with the call.
        """
        start, _ = day_window(now)
        if self.window is None or self.window.start != start:
            self.window = SpendWindow(
                start=start, carried_tokens=totals.tokens, carried_cost_usd=totals.cost_usd
            )
        return self.window


def wait_until_reset(now: datetime, resets_at: datetime) -> timedelta:
    """How long a pause at the limit waits before it resumes by itself."""
    return max(resets_at - now, MIN_PAUSE)
