"""A user's spend in a time window, and their daily limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from agent.db.models import Task, User


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens (input + output) and USD recorded on a user's tasks."""

    tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class TaskWindowSpend:
    """A running task's view of its user's window: the window's spend, the task, the limits.

    Attributes:
        window: What the user's tasks created in the window recorded.
        task_created_at: When the task was created.
        task: What the task recorded so far (all windows).
        limits: The user's own limits.
    """

    window: Spend
    task_created_at: datetime
    task: Spend
    limits: UserSpendLimits


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

    async def task_window(self, task_id: UUID, since: datetime) -> TaskWindowSpend | None:
        """The window of `task_id`'s user since `since`, its usage and the limits: one query.

        Runs before every LLM call of a task (when its workflow asks), so it is one round
        trip: the task row, its user's limits and the window's sums together.

        Args:
            task_id: The task about to call.
            since: Start of the window.

        Returns:
            The window, or None for an unknown task.
        """
        other = aliased(Task)
        window = (
            select(
                func.coalesce(func.sum(other.input_tokens + other.output_tokens), 0).label("t"),
                func.coalesce(func.sum(other.cost_usd), 0.0).label("c"),
            )
            .where(other.user_id == Task.user_id, other.created_at >= since)
            .lateral()
        )
        row = (
            await self.session.execute(
                select(
                    window.c.t,
                    window.c.c,
                    Task.created_at,
                    Task.input_tokens + Task.output_tokens,
                    Task.cost_usd,
                    User.daily_token_limit,
                    User.daily_cost_limit_usd,
                )
                .select_from(Task)
                .join(window, true())
                .outerjoin(User, User.id == Task.user_id)
                .where(Task.id == task_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return TaskWindowSpend(
            window=Spend(tokens=int(row[0]), cost_usd=float(row[1])),
            task_created_at=row[2],
            task=Spend(tokens=int(row[3]), cost_usd=float(row[4] or 0.0)),
            limits=UserSpendLimits(row[5], row[6]),
        )

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
