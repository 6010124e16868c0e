"""Event retention: delete the event logs and outputs of tasks finished long ago.

`prune_in_batches` is the one way both `agent db prune` and the scheduled retention
workflow's activity prune: a bounded number of tasks per transaction, so a first run over
years of history never holds one huge transaction (or its locks) open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import ConversationMessage, Event, Milestone, Task, ToolCallRecord
from agent.events.types import TaskStatus

if TYPE_CHECKING:
    from agent.db.session import DatabaseSessionManager

TERMINAL_STATUSES = tuple(s.value for s in TaskStatus if s.is_terminal)

DEFAULT_BATCH_TASKS = 100
"""Tasks pruned per transaction: at ~500 events a task, about 50,000 rows deleted at once."""


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

    async def prune_finished_before(
        self, cutoff: datetime, now: datetime, limit: int | None = None
    ) -> PruneResult:
        """Delete the events and outputs of every task that finished before `cutoff`.

        Only terminal tasks with a `finished_at` before `cutoff` whose log is still whole
        are touched: their events, model conversations and milestone outputs (with tool
        call results) go, the task row, its totals, `last_event_seq` and the milestone
        rows with their usage stay, and `events_pruned_at` is set to `now`. Running and
        paused tasks (and their sockets) are never touched.

        Args:
            cutoff: Tasks that finished before this instant are pruned.
            now: The instant recorded in `events_pruned_at`.
            limit: At most this many tasks, the longest finished first (None: all).

        Returns:
            How many tasks, events and outputs were pruned.
        """
        ids = list((await self.session.execute(self.candidates(cutoff, limit))).scalars())
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

    @staticmethod
    def candidates(cutoff: datetime, limit: int | None = None) -> Select[UUID]:
        """The statement selecting (and locking) the ids of the tasks a prune would take.

        Rows another pruner holds are skipped, so concurrent pruners split the work.

        Args:
            cutoff: Tasks that finished before this instant.
            limit: At most this many, the longest finished first (None: all).

        Returns:
            A `SELECT tasks.id ... FOR UPDATE SKIP LOCKED`.
        """
        stmt = (
            select(Task.id)
            .where(
                Task.status.in_(TERMINAL_STATUSES),
                Task.finished_at < cutoff,
                Task.events_pruned_at.is_(None),
            )
            .order_by(Task.finished_at)
            .with_for_update(skip_locked=True)
        )
        return stmt if limit is None else stmt.limit(limit)


async def prune_in_batches(
    manager: DatabaseSessionManager,
    cutoff: datetime,
    now: datetime,
    *,
    batch_tasks: int = DEFAULT_BATCH_TASKS,
    on_batch: Callable[[PruneResult], None] | None = None,
) -> PruneResult:
    """Prune every task finished before `cutoff`, `batch_tasks` tasks per transaction.

    Each batch commits on its own: an interrupted run keeps what it pruned, and the next
    run (or a retry) carries on with the tasks still whole.

    Args:
        manager: Sessions on the database to prune.
        cutoff: Tasks that finished before this instant lose their events and outputs.
        now: Recorded as the tasks' `events_pruned_at`.
        batch_tasks: Tasks per transaction (>= 1).
        on_batch: Called after each committed batch with the running totals (heartbeats,
            progress output).

    Returns:
        The totals of every batch.

    Raises:
        ValueError: When `batch_tasks` is below 1.
    """
    if batch_tasks < 1:
        raise ValueError("batch_tasks must be at least 1")
    total = PruneResult(tasks=0, events=0, outputs=0)
    while True:
        async with manager.session() as session, session.begin():
            batch = await RetentionRepository(session).prune_finished_before(
                cutoff, now, limit=batch_tasks
            )
        total = PruneResult(
            tasks=total.tasks + batch.tasks,
            events=total.events + batch.events,
            outputs=total.outputs + batch.outputs,
        )
        if on_batch is not None and batch.tasks:
            on_batch(total)
        if batch.tasks < batch_tasks:
            return total


def _count(result: Any) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(result.rowcount or 0)
