"""ChunkPublisher: the first text of a stream goes out at once, the rest in batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.common import ChunkPublisher, StreamHeartbeat
from agent.db.session import DatabaseSessionManager
from agent.events.notify import EVENTS_CHANNEL, EphemeralNotification, parse_notification
from agent.events.types import AgentRole
from tests.polling import wait_until

NEVER_SECONDS = 3600.0
"""A batch interval no test reaches: only the first-chunk rule can flush on `add`."""


class Received:
    """Chunk texts received on the events channel, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        notification = parse_notification(payload)
        assert isinstance(notification, EphemeralNotification)
        self.texts.append(notification.event.message)


@pytest.fixture
async def received(database_url: str) -> AsyncIterator[Received]:
    conn = await asyncpg.connect(database_url)
    sink = Received()
    await conn.add_listener(EVENTS_CHANNEL, sink.on_notify)
    yield sink
    await conn.close()


def _publisher(db: DatabaseSessionManager) -> ChunkPublisher:
    return ChunkPublisher(
        db,
        StreamHeartbeat(),
        task_id=uuid4(),
        session_id=None,
        milestone_id=None,
        agent=AgentRole.WORKER,
        interval=NEVER_SECONDS,
    )


async def test_first_text_is_published_at_once_and_the_rest_is_batched(
    session_manager: DatabaseSessionManager, received: Received
) -> None:
    # Arrange
    published_after: dict[str, int] = {}

    async def stream() -> None:
        publisher = _publisher(session_manager)
        for delta in ["", "Hel", "lo", " world"]:
            await publisher.add(delta)
            published_after[delta] = publisher.published
        await publisher.flush()
        published_after["flush"] = publisher.published

    async def both_arrived() -> bool:
        await asyncio.sleep(0)
        return len(received.texts) >= 2

    # Act
    await ActivityEnvironment().run(stream)

    # Assert: an empty delta is no first text; "Hel" went out without waiting for the
    # (never reached) batch interval; the rest waited for the flush.
    assert published_after == {"": 0, "Hel": 1, "lo": 1, " world": 1, "flush": 2}
    await wait_until(both_arrived, "two chunk notifications")
    assert received.texts == ["Hel", "lo world"]
