"""A user's spend in a time window, and their daily limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task, User


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens (input + output) and USD recorded on a user's tasks."""

    tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class UserSpendLimits:
    """A user's own daily limits (None: the server default applies)."""

    daily_token_limit: int | None
    daily_cost_limit_usd: float | None


class SpendRepository:
    """Reads what a user's tasks spent and the user's own limits."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        self.session = session

    async def spent_since(self, user_id: UUID, since: datetime) -> Spend:
        """What the user's tasks created at or after `since` have recorded so far.

        Usage is recorded on the task row, so a task counts in the window it was
        created in (one started before midnight keeps counting in the day before).

        Args:
            user_id: The user.
            since: Start of the window.

        Returns:
            The window's tokens and cost.
        """
        row = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(Task.input_tokens + Task.output_tokens), 0),
                    func.coalesce(func.sum(Task.cost_usd), 0.0),
                ).where(Task.user_id == user_id, Task.created_at >= since)
            )
        ).one()
        return Spend(tokens=int(row[0]), cost_usd=float(row[1]))

    async def limits_of(self, user_id: UUID) -> UserSpendLimits:
        """The user's own limits (both None for an unknown user)."""
        row = (
            await self.session.execute(
                select(User.daily_token_limit, User.daily_cost_limit_usd).where(User.id == user_id)
            )
        ).one_or_none()
        if row is None:
            return UserSpendLimits(None, None)
        return UserSpendLimits(row.daily_token_limit, row.daily_cost_limit_usd)

    async def set_limits(self, user_id: UUID, limits: UserSpendLimits) -> None:
        """Set a user's own limits (None clears one back to the server default)."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                daily_token_limit=limits.daily_token_limit,
                daily_cost_limit_usd=limits.daily_cost_limit_usd,
            )
        )
