"""A user's running-task quota and the positions of their queued tasks."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task, User
from agent.events.types import TaskStatus


class QuotaRepository:
    """Reads and sets `users.max_running_tasks`; ranks a user's queued tasks."""

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        self.session = session

    async def max_running_of(self, user_id: UUID) -> int | None:
        """The user's own quota (None: unset, or an unknown user)."""
        value = await self.session.scalar(select(User.max_running_tasks).where(User.id == user_id))
        return int(value) if value is not None else None

    async def set_max_running(self, user_id: UUID, max_running: int | None) -> None:
        """Set the user's own quota (None: back to the server default)."""
        await self.session.execute(
            update(User).where(User.id == user_id).values(max_running_tasks=max_running)
        )

    async def queue_positions(self, user_id: UUID, task_ids: Collection[UUID]) -> dict[UUID, int]:
        """Positions (1 = next to start) of those of `task_ids` that are queued.

        The order is the one the admission workflow keeps: creation time, then id.

        Args:
            user_id: The tasks' owner.
            task_ids: The tasks asked about; those not queued are left out.

        Returns:
            Task id -> position among all of the user's queued tasks.
        """
        if not task_ids:
            return {}
        ranked = (
            select(
                Task.id.label("id"),
                func.row_number().over(order_by=(Task.created_at, Task.id)).label("position"),
            )
            .where(Task.user_id == user_id, Task.status == TaskStatus.QUEUED)
            .subquery()
        )
        rows = await self.session.execute(
            select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(list(task_ids)))
        )
        return {row.id: int(row.position) for row in rows}
