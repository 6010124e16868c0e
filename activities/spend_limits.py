"""The user's daily spend limit, checked before a running task's LLM call.

Folded into the call's own prepare step (its transaction, one more query), so a task
pays no extra activity per call; the workflow asks for it by sending a `SpendWindow`.
"""

from __future__ import annotations

from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from agent.config import Settings
from agent.contract.spend import SpendWindow, UserSpendLimit, limit_reached
from agent.repositories.spend import SpendRepository, TaskWindowSpend

logger = structlog.get_logger(__name__)


def window_spend(found: TaskWindowSpend, window: SpendWindow) -> tuple[int, float]:
    """The window's tokens and cost, counting a task from an earlier day by its share.

    The repository sums the tasks created in the window. A task created before it (it
    runs past midnight) is not among them: what it spent since it first called in this
    window (its usage less `carried_*`) counts here, and its earlier usage stays in the
    day it was spent.
    """
    tokens, cost = found.window.tokens, found.window.cost_usd
    if found.task_created_at < window.start:
        tokens += max(0, found.task.tokens - window.carried_tokens)
        cost += max(0.0, found.task.cost_usd - window.carried_cost_usd)
    return tokens, cost


async def user_spend_limit(
    session: AsyncSession, settings: Settings, task_id: UUID, window: SpendWindow
) -> UserSpendLimit | None:
    """The user's daily limit when the window's spend reached it, else None.

    The user's own limits (set by an admin) win over the server's defaults, as when the
    API refuses a new task.

    Args:
        session: The activity's session (its prepare transaction).
        settings: The server's default limits and `spend_limit_action`.
        task_id: The task about to call.
        window: The window the workflow checks the call against.

    Returns:
        The limit reached (spend, limits, reset, action), or None when the call may run.
    """
    found = await SpendRepository(session).task_window(task_id, window.start)
    if found is None:
        return None
    token_limit = found.limits.daily_token_limit or settings.user_daily_token_limit
    cost_limit = found.limits.daily_cost_limit_usd or settings.user_daily_cost_limit_usd
    tokens, cost = window_spend(found, window)
    if not limit_reached(
        tokens=tokens, cost_usd=cost, token_limit=token_limit, cost_limit_usd=cost_limit
    ):
        return None
    logger.info(
        "llm_call_blocked_by_user_daily_limit",
        task_id=str(task_id),
        tokens_spent=tokens,
        token_limit=token_limit,
        cost_spent_usd=cost,
        cost_limit_usd=cost_limit,
    )
    return UserSpendLimit(
        window_start=window.start,
        resets_at=window.resets_at,
        tokens_spent=tokens,
        token_limit=token_limit,
        cost_spent_usd=cost,
        cost_limit_usd=cost_limit,
        action=settings.spend_limit_action,
    )
