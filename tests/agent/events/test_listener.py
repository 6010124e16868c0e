"""The LISTEN relay against a real PostgreSQL: order, no loss across a killed connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest

from agent.config import to_libpq_url
from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.listener import PostgresEventListener
from agent.events.notify import publish_ephemeral
from agent.events.types import AgentActivityEvent, EventType, TaskStatus
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository

WAIT_SECONDS = 20.0


class Collector:
    def __init__(self) -> None:
        self.events: list[AgentActivityEvent] = []
        self.changed = asyncio.Condition()

    async def __call__(self, event: AgentActivityEvent) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def stored(self, task_id: UUID) -> list[int]:
        return [
            e.sequence_number
            for e in self.events
            if e.task_id == task_id and e.sequence_number is not None
        ]

    async def wait_for(self, task_id: UUID, last_seq: int) -> None:
        async with asyncio.timeout(WAIT_SECONDS), self.changed:
            await self.changed.wait_for(lambda: last_seq in self.stored(task_id))


async def _task(manager: DatabaseSessionManager) -> Task:
    async with manager.session() as session:
        user = await UserRepository(session).get_or_create("listener-user")
        task = await TaskRepository(session).create(user_id=user.id, goal="g")
        await session.commit()
        return task


async def _append(manager: DatabaseSessionManager, task_id: UUID, start: int, count: int) -> None:
    drafts = [
        EventDraft(
            idempotency_key=f"k-{start + i}",
            event=AgentActivityEvent(
                type=EventType.TASK_PROGRESS,
                task_id=task_id,
                status=TaskStatus.RUNNING,
                message=f"m{start + i}",
            ),
        )
        for i in range(count)
    ]
    async with manager.session() as session:
        await EventRepository(session).append(drafts)
        await session.commit()


@pytest.fixture
async def relay(
    database_url: str, session_manager: DatabaseSessionManager
) -> AsyncIterator[tuple[PostgresEventListener, Collector]]:
    collector = Collector()
    listener = PostgresEventListener(
        database_url, session_manager.session, collector, health_check_interval_seconds=0.5
    )
    await listener.start()
    await listener.wait_connected(WAIT_SECONDS)
    yield listener, collector
    await listener.stop()


async def test_relays_stored_events_in_order(
    relay: tuple[PostgresEventListener, Collector], session_manager: DatabaseSessionManager
) -> None:
    _, collector = relay
    task = await _task(session_manager)

    await _append(session_manager, task.id, 0, 3)
    await _append(session_manager, task.id, 3, 2)

    await collector.wait_for(task.id, 5)
    # The first batch is seen from its last event (earlier history is not replayed on
    # first sight); from then on every event, in order, once.
    seqs = collector.stored(task.id)
    assert seqs == sorted(set(seqs))
    assert seqs[-3:] == [3, 4, 5]


async def test_relays_ephemeral_events(
    relay: tuple[PostgresEventListener, Collector], session_manager: DatabaseSessionManager
) -> None:
    _, collector = relay
    task = await _task(session_manager)
    chunk = AgentActivityEvent(type=EventType.LLM_CHUNK, task_id=task.id, message="tok")

    async with session_manager.session() as session:
        await publish_ephemeral(session, chunk)
        await session.commit()

    async with asyncio.timeout(WAIT_SECONDS), collector.changed:
        await collector.changed.wait_for(
            lambda: any(e.type == EventType.LLM_CHUNK for e in collector.events)
        )
    assert [e.message for e in collector.events if e.type == EventType.LLM_CHUNK] == ["tok"]


async def test_killed_connection_reconnects_and_backfills(
    relay: tuple[PostgresEventListener, Collector],
    session_manager: DatabaseSessionManager,
    database_url: str,
) -> None:
    listener, collector = relay
    task = await _task(session_manager)
    await _append(session_manager, task.id, 0, 1)
    await collector.wait_for(task.id, 1)
    pid = listener.backend_pid
    assert pid is not None

    admin = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    # Written while the relay has no connection: only the table knows about these.
    await _append(session_manager, task.id, 1, 4)

    await collector.wait_for(task.id, 5)
    assert collector.stored(task.id) == [1, 2, 3, 4, 5]
    assert listener.reconnect_count >= 1
    assert listener.backend_pid not in (None, pid)
