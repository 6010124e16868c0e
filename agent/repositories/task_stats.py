"""Task counts for the metrics: tasks by status and tasks waiting for a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task
from agent.events.types import TaskStatus


@dataclass(frozen=True)
class TaskStats:
    """Counts over every task (all users)."""

    by_status: dict[str, int]
    """Number of tasks in each status (every status present, zero included)."""
    awaiting_person: int
    """Tasks paused at a breakpoint."""
    oldest_pause: datetime | None
    """When the longest-waiting paused task hit its breakpoint; None when none waits."""


class TaskStatsRepository:
    """Aggregate reads over the tasks table (two statements, no row is loaded)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stats(self) -> TaskStats:
        """Return the task counts.

        Returns:
            Tasks by status, and how many wait for a person since when.
        """
        rows = await self.session.execute(select(Task.status, func.count()).group_by(Task.status))
        by_status = {status.value: 0 for status in TaskStatus}
        for status, count in rows.all():
            by_status[str(status)] = int(count)
        hit_at = Task.pause_state["hit_at"].astext.cast(DateTime(timezone=True))
        paused = await self.session.execute(
            select(func.count(), func.min(hit_at)).where(Task.status == TaskStatus.PAUSED)
        )
        count, oldest = paused.one()
        return TaskStats(by_status=by_status, awaiting_person=int(count), oldest_pause=oldest)
