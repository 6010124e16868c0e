"""EventRepository: gapless sequences, idempotent appends, NOTIFY only on commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.notify import EVENTS_CHANNEL, StoredNotification, parse_notification
from agent.events.types import AgentActivityEvent, AgentRole, AgentStatus, EventType
from agent.repositories.errors import InvalidEventError, InvalidPageSizeError, RecordNotFoundError
from agent.repositories.event_rows import read_windows
from agent.repositories.events import EventDraft, EventRepository
from tests.agent.repositories.conftest import StatementCounter, TaskFactory

NOTIFY_WAIT_SECONDS = 10.0


async def _last_event_seq(session: AsyncSession, task_id: UUID) -> int:
    """The task's allocated sequence counter, read fresh (not from the identity map)."""
    return int(
        (await session.execute(select(Task.last_event_seq).where(Task.id == task_id))).scalar_one()
    )


def _draft(task: Task, key: str, message: str = "", **fields: object) -> EventDraft:
    event = AgentActivityEvent.model_validate(
        {
            "type": EventType.AGENT_STARTED,
            "task_id": task.id,
            "session_id": task.session_id,
            "agent": AgentRole.WORKER,
            "status": AgentStatus.STARTED,
            "message": message or key,
            **fields,
        }
    )
    return EventDraft(idempotency_key=key, event=event)


class Listener:
    """A dedicated asyncpg connection LISTENing on the events channel."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.payloads: asyncio.Queue[str] = asyncio.Queue()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.put_nowait(payload)

    async def next(self) -> str:
        return await asyncio.wait_for(self.payloads.get(), NOTIFY_WAIT_SECONDS)

    async def drained(self) -> bool:
        await self.conn.fetchval("SELECT 1")  # a round trip delivers anything pending
        return self.payloads.empty()


@pytest.fixture
async def listener(database_url: str) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(database_url)
    listener = Listener(conn)
    await conn.add_listener(EVENTS_CHANNEL, listener._on_notify)
    yield listener
    await conn.close()


async def test_append_allocates_consecutive_sequence_numbers(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task(session_id=uuid4())
    repo = EventRepository(session)

    # Act
    first = await repo.append([_draft(task, "a"), _draft(task, "b")])
    second = await repo.append([_draft(task, "c")])
    await session.commit()

    # Assert
    assert [e.sequence_number for e in first + second] == [1, 2, 3]
    assert [e.message for e in first + second] == ["a", "b", "c"]
    assert await _last_event_seq(session, task.id) == 3
    assert [e.sequence_number for e in await repo.list_after(task.id, 0)] == [1, 2, 3]


async def test_append_round_trips_every_field(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task(session_id=uuid4())
    milestone_id = uuid4()
    draft = _draft(
        task,
        "k",
        message="hello",
        milestone_id=milestone_id,
        details={"tokens": 3, "nested": {"a": [1, 2]}},
    )

    # Act
    await EventRepository(session).append([draft])
    await session.commit()
    [stored] = await EventRepository(session).list_after(task.id, 0)

    # Assert
    assert stored == draft.event.model_copy(update={"sequence_number": 1})


async def test_retry_with_same_drafts_inserts_nothing_and_leaves_no_gap(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    task = await make_task()
    repo = EventRepository(session)
    await repo.append([_draft(task, "w:a:0"), _draft(task, "w:a:1")])
    await session.commit()

    # Act: a full retry, then a retry that goes further than the first attempt.
    again = await repo.append([_draft(task, "w:a:0"), _draft(task, "w:a:1")])
    further = await repo.append(
        [_draft(task, "w:a:0"), _draft(task, "w:a:1"), _draft(task, "w:a:2")]
    )
    await session.commit()

    # Assert
    assert again == []
    assert [(e.sequence_number, e.message) for e in further] == [(3, "w:a:2")]
    assert await _last_event_seq(session, task.id) == 3
    assert [e.sequence_number for e in await repo.list_after(task.id, 0)] == [1, 2, 3]


async def test_concurrent_appends_are_gapless_and_retries_never_duplicate(
    session_manager: DatabaseSessionManager, make_task: TaskFactory
) -> None:
    # Arrange: 20 "activities" of one task, each appending 3 events in its own session.
    task = await make_task()

    async def activity(index: int) -> list[int]:
        async with session_manager.session() as s:
            drafts = [_draft(task, f"wf:act-{index}:{i}") for i in range(3)]
            stored = await EventRepository(s).append(drafts)
            await s.commit()
            return [e.sequence_number or 0 for e in stored]

    # Act
    first_run = await asyncio.gather(*(activity(i) for i in range(20)))
    retried = await asyncio.gather(*(activity(i) for i in range(20)))

    # Assert
    allocated = sorted(seq for seqs in first_run for seq in seqs)
    assert allocated == list(range(1, 61))
    for seqs in first_run:  # one append's events are consecutive
        assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert all(seqs == [] for seqs in retried)
    async with session_manager.session() as s:
        assert await _last_event_seq(s, task.id) == 60
        stored = await EventRepository(s).list_after(task.id, 0, limit=100)
    assert [e.sequence_number for e in stored] == list(range(1, 61))


async def test_append_is_two_statements_whatever_the_number_of_events(
    session: AsyncSession, make_task: TaskFactory, statements: StatementCounter
) -> None:
    # Arrange: a task with a session (so the advisory lock is taken too).
    task = await make_task(session_id=uuid4())
    repo = EventRepository(session)
    await repo.append([_draft(task, "a")])
    await session.commit()

    # Act: a retry of "a" with three new events.
    statements.active = True
    stored = await repo.append([_draft(task, k) for k in ("a", "b", "c", "d")])
    statements.active = False
    await session.commit()

    # Assert: the locks, then key check + counter + insert + NOTIFY in one statement.
    assert [(e.sequence_number, e.message) for e in stored] == [(2, "b"), (3, "c"), (4, "d")]
    assert statements.count == 2
    assert await _last_event_seq(session, task.id) == 4


async def test_list_after_pages_in_order(session: AsyncSession, make_task: TaskFactory) -> None:
    # Arrange
    task = await make_task()
    repo = EventRepository(session)
    await repo.append([_draft(task, str(i)) for i in range(7)])
    await session.commit()

    # Act
    page = await repo.list_after(task.id, after_seq=2, limit=3)
    tail = await repo.list_after(task.id, after_seq=7)

    # Assert
    assert [e.sequence_number for e in page] == [3, 4, 5]
    assert tail == []


async def test_read_windows_reads_each_task_in_its_window_in_one_statement(
    session: AsyncSession, make_task: TaskFactory, statements: StatementCounter
) -> None:
    # Arrange
    first, second, untouched = await make_task(), await make_task(), await make_task()
    repo = EventRepository(session)
    for task in (first, second, untouched):
        await repo.append([_draft(task, f"{task.id}:{i}", message=str(i)) for i in range(5)])
    await session.commit()

    # Act
    statements.active = True
    events = await read_windows(session, {first.id: (1, 3), second.id: (3, 99)})
    statements.active = False

    # Assert
    assert [(e.task_id, e.sequence_number, e.message) for e in events] == sorted(
        [(first.id, 2, "1"), (first.id, 3, "2"), (second.id, 4, "3"), (second.id, 5, "4")]
    )
    same_via_list_after = (await repo.list_after(first.id, 1))[:2] + await repo.list_after(
        second.id, 3
    )
    assert events == sorted(same_via_list_after, key=lambda e: (e.task_id, e.sequence_number))
    assert statements.count == 1
    assert await read_windows(session, {}) == []


async def test_list_after_rejects_bad_limit(session: AsyncSession) -> None:
    with pytest.raises(InvalidPageSizeError):
        await EventRepository(session).list_after(uuid4(), 0, limit=0)


async def test_list_for_session_after_resumes_by_row_id(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange: two tasks in one session, one in another, interleaved appends.
    session_id = uuid4()
    first = await make_task(session_id=session_id)
    second = await make_task(session_id=session_id)
    elsewhere = await make_task(session_id=uuid4())
    repo = EventRepository(session)
    for i in range(3):
        for task in (first, second, elsewhere):
            await repo.append([_draft(task, f"e{i}")])
            await session.commit()

    # Act
    head = await repo.list_for_session_after(session_id, 0, limit=4)
    rest = await repo.list_for_session_after(session_id, head[-1].event_id)

    # Assert
    rows = head + rest
    assert len(rows) == 6
    ids = [row.event_id for row in rows]
    assert ids == sorted(ids)
    assert [(row.event.task_id, row.event.sequence_number) for row in rows] == [
        (task.id, seq) for seq in (1, 2, 3) for task in (first, second)
    ]


async def test_append_validates_drafts(session: AsyncSession, make_task: TaskFactory) -> None:
    task = await make_task()
    other = await make_task()
    repo = EventRepository(session)
    chunk = _draft(task, "c", type=EventType.LLM_CHUNK)
    with pytest.raises(InvalidEventError, match="one task"):
        await repo.append([_draft(task, "a"), _draft(other, "b")])
    with pytest.raises(InvalidEventError, match="repeat"):
        await repo.append([_draft(task, "a"), _draft(task, "a")])
    with pytest.raises(InvalidEventError, match="ephemeral"):
        await repo.append([chunk])
    assert await repo.append([]) == []


async def test_append_to_missing_task_raises(session: AsyncSession, make_task: TaskFactory) -> None:
    task = await make_task()
    ghost = task.__class__(id=uuid4(), session_id=None)
    with pytest.raises(RecordNotFoundError):
        await EventRepository(session).append([_draft(ghost, "a")])


async def test_notification_arrives_only_after_commit(
    session: AsyncSession, make_task: TaskFactory, listener: Listener
) -> None:
    # Arrange
    task = await make_task(session_id=uuid4())
    repo = EventRepository(session)

    # Act
    await repo.append([_draft(task, "a"), _draft(task, "b")])
    before_commit_empty = await listener.drained()
    await session.commit()
    payload = await listener.next()

    # Assert
    assert before_commit_empty
    assert parse_notification(payload) == StoredNotification(
        task_id=task.id, session_id=task.session_id, seq=2
    )


async def test_no_notification_after_rollback(
    session: AsyncSession, make_task: TaskFactory, listener: Listener
) -> None:
    # Arrange
    rolled_back = await make_task()
    marker = await make_task()
    repo = EventRepository(session)

    # Act: a rolled-back append, then a committed one as a marker. Notifications arrive
    # in commit order, so anything from the first would come before the marker's.
    rolled_back_id, marker_id = rolled_back.id, marker.id
    marker_draft = _draft(marker, "m")  # built now: rollback expires the instances
    await repo.append([_draft(rolled_back, "a")])
    await session.rollback()
    await repo.append([marker_draft])
    await session.commit()
    first = parse_notification(await listener.next())

    # Assert
    assert isinstance(first, StoredNotification)
    assert first.task_id == marker_id
    assert await listener.drained()
    assert await repo.list_after(rolled_back_id, 0) == []
    assert await _last_event_seq(session, rolled_back_id) == 0


async def test_retry_sends_no_notification(
    session: AsyncSession, make_task: TaskFactory, listener: Listener
) -> None:
    # Arrange
    task = await make_task()
    repo = EventRepository(session)
    await repo.append([_draft(task, "a")])
    await session.commit()
    await listener.next()

    # Act
    await repo.append([_draft(task, "a")])
    await session.commit()

    # Assert
    assert await listener.drained()
