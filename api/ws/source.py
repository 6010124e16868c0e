"""The database side of the event sockets: short-lived sessions per read."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select

from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentActivityEvent
from agent.repositories.events import EventRepository


class DatabaseEventSource:
    """Reads stored events for sockets; each read takes a pooled connection briefly.

    A socket lives for hours; holding a session (and its connection) for that long would
    exhaust the pool, so every read opens and closes its own.

    Args:
        manager: The application's session manager.
    """

    def __init__(self, manager: DatabaseSessionManager) -> None:
        self._manager = manager

    async def task_events_after(
        self, task_id: UUID, after_seq: int, limit: int
    ) -> Sequence[AgentActivityEvent]:
        """Return a task's stored events with `sequence_number > after_seq`."""
        async with self._manager.session() as session:
            return await EventRepository(session).list_after(task_id, after_seq, limit)

    async def session_events_after(
        self, session_id: UUID, after_id: int, limit: int
    ) -> Sequence[tuple[int, AgentActivityEvent]]:
        """Return `(row id, event)` of a session's events with `id > after_id`."""
        async with self._manager.session() as session:
            rows = await EventRepository(session).list_for_session_after(
                session_id, after_id, limit
            )
        return [(row.event_id, row.event) for row in rows]

    async def session_positions(
        self, session_id: UUID, user_id: UUID, up_to_id: int
    ) -> dict[UUID, int]:
        """Per task of the user's session, the highest sequence number at `id <= up_to_id`."""
        if up_to_id <= 0:
            return {}
        async with self._manager.session() as session:
            return await EventRepository(session).session_positions(session_id, user_id, up_to_id)

    async def session_task_ids(self, session_id: UUID, user_id: UUID) -> set[UUID]:
        """Ids of the user's tasks in a session."""
        stmt = select(Task.id).where(Task.session_id == session_id, Task.user_id == user_id)
        async with self._manager.session() as session:
            return set((await session.scalars(stmt)).all())
