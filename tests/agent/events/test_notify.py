"""NOTIFY payloads: parsing, ephemeral publishing and splitting of long texts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.session import DatabaseSessionManager
from agent.events.notify import (
    EVENTS_CHANNEL,
    NOTIFY_PAYLOAD_LIMIT_BYTES,
    EphemeralNotification,
    NotificationError,
    NotificationTooLargeError,
    StoredNotification,
    parse_notification,
    publish_ephemeral,
    split_ephemeral,
    stored_payload_parts,
)
from agent.events.types import AgentActivityEvent, AgentRole, EventType

NOTIFY_WAIT_SECONDS = 10.0


def _chunk(text: str, **details: object) -> AgentActivityEvent:
    return AgentActivityEvent(
        type=EventType.LLM_CHUNK,
        task_id=uuid4(),
        session_id=uuid4(),
        agent=AgentRole.WORKER,
        message=text,
        details={"attempt": 1, **details},
    )


@pytest.fixture
async def payloads(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Payloads received on the events channel by a dedicated connection."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(EVENTS_CHANNEL, lambda *args: queue.put_nowait(args[3]))
    yield queue
    await conn.close()


async def _take(queue: asyncio.Queue[str], count: int) -> list[str]:
    return [await asyncio.wait_for(queue.get(), NOTIFY_WAIT_SECONDS) for _ in range(count)]


def test_parse_stored_notification() -> None:
    # Arrange
    task_id, session_id = uuid4(), uuid4()
    payload = f'{{"kind":"stored","task_id":"{task_id}","session_id":"{session_id}","seq":7}}'

    # Act
    parsed = parse_notification(payload)

    # Assert
    assert parsed == StoredNotification(task_id=task_id, session_id=session_id, seq=7)


def test_parse_ephemeral_notification_round_trips() -> None:
    notification = EphemeralNotification(event=_chunk("hi"))
    assert parse_notification(notification.model_dump_json()) == notification
    assert parse_notification(notification.model_dump_json().encode()) == notification


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "[]",
        '{"kind":"other"}',
        '{"kind":"stored","task_id":"nope","seq":1}',
        '{"kind":"stored","task_id":"00000000-0000-0000-0000-000000000000","seq":0}',
        '{"kind":"ephemeral","event":{}}',
    ],
)
def test_parse_rejects_garbage(payload: str) -> None:
    with pytest.raises(NotificationError):
        parse_notification(payload)


def test_short_text_is_one_notification() -> None:
    event = _chunk("short")
    assert split_ephemeral(event) == [EphemeralNotification(event=event)]


@pytest.mark.parametrize(
    "text",
    [
        "a" * 30_000,
        "é€😀" * 4_000,  # 2-, 3- and 4-byte characters
        '"\\\n\t\x01' * 3_000,  # characters JSON escapes (up to 6 bytes each)
    ],
)
def test_long_text_is_split_below_the_limit_in_order(text: str) -> None:
    # Arrange
    event = _chunk(text)

    # Act
    parts = split_ephemeral(event)

    # Assert
    assert len(parts) > 1
    assert all(len(p.model_dump_json().encode()) < NOTIFY_PAYLOAD_LIMIT_BYTES for p in parts)
    assert "".join(p.event.message for p in parts) == text
    assert [(p.part, p.parts) for p in parts] == [(i, len(parts)) for i in range(len(parts))]
    assert all(p.event.details == event.details for p in parts)
    assert all(p.event.task_id == event.task_id for p in parts)


def test_event_too_large_without_its_text_is_refused() -> None:
    with pytest.raises(NotificationTooLargeError):
        split_ephemeral(_chunk("x", blob="y" * NOTIFY_PAYLOAD_LIMIT_BYTES))


async def test_publish_ephemeral_is_delivered_on_commit(
    session: AsyncSession, payloads: asyncio.Queue[str]
) -> None:
    # Arrange
    event = _chunk("Hello, wor")

    # Act
    sent = await publish_ephemeral(session, event)
    await session.commit()
    [payload] = await _take(payloads, 1)

    # Assert
    assert sent == 1
    parsed = parse_notification(payload)
    assert isinstance(parsed, EphemeralNotification)
    assert parsed.event == event


async def test_publish_ephemeral_long_text_arrives_in_order(
    session_manager: DatabaseSessionManager, payloads: asyncio.Queue[str]
) -> None:
    # Arrange
    text = "".join(f"token{i} " for i in range(5_000))
    event = _chunk(text)

    # Act: on an autocommit connection, where each NOTIFY is delivered at once.
    async with session_manager.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        sent = await publish_ephemeral(auto, event)
    received = [parse_notification(p) for p in await _take(payloads, sent)]

    # Assert
    assert sent > 1
    assert all(isinstance(n, EphemeralNotification) for n in received)
    parts = [n for n in received if isinstance(n, EphemeralNotification)]
    assert [n.part for n in parts] == list(range(sent))
    assert "".join(n.event.message for n in parts) == text


async def test_publish_ephemeral_is_dropped_on_rollback(
    session: AsyncSession, payloads: asyncio.Queue[str]
) -> None:
    # Arrange
    marker = _chunk("marker")

    # Act
    await publish_ephemeral(session, _chunk("dropped"))
    await session.rollback()
    await publish_ephemeral(session, marker)
    await session.commit()
    [payload] = await _take(payloads, 1)

    # Assert
    parsed = parse_notification(payload)
    assert isinstance(parsed, EphemeralNotification)
    assert parsed.event.message == "marker"


@pytest.mark.parametrize("session_id", [None, uuid4()])
def test_stored_payload_parts_frame_any_sequence_number(session_id: UUID | None) -> None:
    # Arrange
    task_id = uuid4()

    # Act
    head, tail = stored_payload_parts(task_id, session_id)

    # Assert: what SQL builds around the sequence number is exactly the model's JSON.
    for seq in (1, 9, 10, 123456789):
        expected = StoredNotification(task_id=task_id, session_id=session_id, seq=seq)
        assert head + str(seq) + tail == expected.model_dump_json()
        assert parse_notification(head + str(seq) + tail) == expected
