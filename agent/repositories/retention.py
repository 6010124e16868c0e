"""Event retention: delete the event logs and outputs of tasks finished long ago."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ConversationMessage, Event, Milestone, Task, ToolCallRecord
from agent.events.types import TaskStatus

TERMINAL_STATUSES = tuple(s.value for s in TaskStatus if s.is_terminal)


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one prune removed."""

    tasks: int
    """Tasks whose log was pruned (their rows and totals stay)."""
    events: int
    """Event rows deleted."""
    outputs: int
    """Milestone outputs cleared."""


class RetentionRepository:
    """Prunes finished tasks' events and outputs; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def prune_finished_before(self, cutoff: datetime, now: datetime) -> PruneResult:
        """Delete the events and outputs of every task that finished before `cutoff`.

        Only terminal tasks with a `finished_at` before `cutoff` whose log is still whole
        are touched: their events, model conversations and milestone outputs (with tool
        call results) go, the task row, its totals, `last_event_seq` and the milestone
        rows with their usage stay, and `events_pruned_at` is set to `now`. Running and
        paused tasks (and their sockets) are never touched.

        Args:
            cutoff: Tasks that finished before this instant are pruned.
            now: The instant recorded in `events_pruned_at`.

        Returns:
            How many tasks, events and outputs were pruned.
        """
        ids = list(
            (
                await self.session.execute(
                    select(Task.id)
                    .where(
                        Task.status.in_(TERMINAL_STATUSES),
                        Task.finished_at < cutoff,
                        Task.events_pruned_at.is_(None),
                    )
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            return PruneResult(tasks=0, events=0, outputs=0)
        events = await self.session.execute(delete(Event).where(Event.task_id.in_(ids)))
        await self.session.execute(
            delete(ConversationMessage).where(ConversationMessage.task_id.in_(ids))
        )
        await self.session.execute(
            update(ToolCallRecord).where(ToolCallRecord.task_id.in_(ids)).values(result=None)
        )
        outputs = await self.session.execute(
            update(Milestone)
            .where(Milestone.task_id.in_(ids), Milestone.output.is_not(None))
            .values(output=None, feedback=None)
        )
        await self.session.execute(
            update(Task).where(Task.id.in_(ids)).values(events_pruned_at=now)
        )
        return PruneResult(tasks=len(ids), events=_count(events), outputs=_count(outputs))


def _count(result: Any) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(result.rowcount or 0)
