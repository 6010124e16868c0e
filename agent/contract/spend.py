"""A user's daily spend window: what the API, the activities and the workflow agree on.

Pure types and arithmetic, safe in the workflow sandbox. A user's daily limits
(`AGENT_USER_DAILY_TOKEN_LIMIT`, `AGENT_USER_DAILY_COST_LIMIT_USD`, or the user's own,
set by an admin) apply per UTC day: the API refuses new tasks once the day's spend
reached them, and a running task's next LLM call is refused too (its activity says so
in `BudgetBlock.user_daily`), so the task pauses at `budget_exhausted` until the window
resets, or fails (`AGENT_SPEND_LIMIT_ACTION`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

USER_DAILY_SCOPE = "user_daily"
"""`PauseState.scope` of a pause at the user's daily spend limit (not the task's budget)."""

WINDOW_LENGTH = timedelta(days=1)


class SpendLimitAction(StrEnum):
    """What a running task does when its user's daily spend limit is reached."""

    PAUSE = "pause"
    """Pause at `budget_exhausted` until the window resets (or a person resumes)."""
    FAIL = "fail"
    """Fail with `spend_limit_reached`."""


def day_window(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day `now` falls in: its start and the instant it resets.

    Args:
        now: Any aware instant.

    Returns:
        Midnight UTC at or before `now`, and the next midnight.
    """
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + WINDOW_LENGTH


class SpendWindow(BaseModel):
    """The window an LLM call of a running task is checked against, as the workflow sees it.

    The window's spend is what the user's tasks created in it recorded, plus, for a task
    created before it (one that runs past midnight), what that task spent since it first
    called in this window: its usage before (`carried_*`) counted in the day it was spent.
    """

    start: datetime
    carried_tokens: int = 0
    carried_cost_usd: float = 0.0

    @property
    def resets_at(self) -> datetime:
        """When the window ends."""
        return self.start + WINDOW_LENGTH


class UserSpendLimit(BaseModel):
    """The user's daily limit that refused an LLM call: the spend, the limits, the reset."""

    window_start: datetime
    resets_at: datetime
    tokens_spent: int
    token_limit: int | None = None
    cost_spent_usd: float
    cost_limit_usd: float | None = None
    action: SpendLimitAction = SpendLimitAction.PAUSE

    @property
    def over_tokens(self) -> bool:
        """Whether the token limit is the one reached (else the cost limit)."""
        return self.token_limit is not None and self.tokens_spent >= self.token_limit

    def describe(self) -> str:
        """The limit reached, the spend and the reset, for a pause's reason or an error."""
        if self.over_tokens:
            used = f"{self.tokens_spent} of {self.token_limit} tokens"
        else:
            used = f"${self.cost_spent_usd:.4f} of ${self.cost_limit_usd or 0.0:.4f}"
        return (
            f"the user's daily spend limit is reached ({used} spent today, UTC); "
            f"the window resets at {self.resets_at.isoformat()}"
        )


def limit_reached(
    *,
    tokens: int,
    cost_usd: float,
    token_limit: int | None,
    cost_limit_usd: float | None,
) -> bool:
    """Whether a window's spend reached either limit (None: that limit is off)."""
    return (token_limit is not None and tokens >= token_limit) or (
        cost_limit_usd is not None and cost_usd >= cost_limit_usd
    )
