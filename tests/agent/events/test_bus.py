"""The in-process event bus: a failing handler never stops the others or the emitter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, MutableMapping
from typing import Any
from uuid import uuid4

from structlog.testing import capture_logs

from agent.events.bus import EventBus, EventHandler
from agent.events.types import AgentActivityEvent, EventType, TaskStatus


class HandlerFailedError(Exception):
    """What the failing test handlers raise."""


def make_event(message: str = "hello") -> AgentActivityEvent:
    return AgentActivityEvent(
        type=EventType.TASK_PROGRESS, task_id=uuid4(), status=TaskStatus.RUNNING, message=message
    )


class Collecting:
    """A handler that keeps what it received; it yields once first, like real I/O."""

    def __init__(self) -> None:
        self.received: list[AgentActivityEvent] = []

    async def handle(self, event: AgentActivityEvent) -> None:
        await asyncio.sleep(0)
        self.received.append(event)


async def failing(event: AgentActivityEvent) -> None:
    raise HandlerFailedError(f"cannot handle {event.message}")


def failures(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "event_handler_failed"]


async def test_a_failing_handler_does_not_stop_the_others_or_the_emitter() -> None:
    # Arrange: the failing handler sits between two working ones.
    bus = EventBus()
    before, after = Collecting(), Collecting()
    bus.subscribe_all(before.handle)
    bus.subscribe_all(failing)
    bus.subscribe_all(after.handle)
    event = make_event()

    # Act
    with capture_logs() as logs:
        await bus.emit(event)

    # Assert
    assert before.received == [event]
    assert after.received == [event]
    logged = failures(logs)
    assert len(logged) == 1
    assert logged[0]["handler"] == "failing"
    assert "cannot handle hello" in str(logged[0]["error"])
    assert logged[0]["task_id"] == str(event.task_id)


async def test_a_failed_handler_stays_subscribed_and_every_failure_is_logged() -> None:
    # Arrange
    bus = EventBus()
    working = Collecting()
    bus.subscribe_all(failing)
    bus.subscribe_all(working.handle)
    events = [make_event("one"), make_event("two")]

    # Act
    with capture_logs() as logs:
        for event in events:
            await bus.emit(event)

    # Assert
    assert working.received == events
    assert bus.handler_count == 2
    assert [str(entry["error"]) for entry in failures(logs)] == [
        repr(HandlerFailedError("cannot handle one")),
        repr(HandlerFailedError("cannot handle two")),
    ]


async def test_a_slow_handler_finishes_although_another_failed_first() -> None:
    # Arrange: the slow handler is still running when the failing one has already raised.
    bus = EventBus()
    failed = asyncio.Event()
    finished: list[AgentActivityEvent] = []

    async def failing_first(event: AgentActivityEvent) -> None:
        failed.set()
        raise HandlerFailedError("first")

    async def slow(event: AgentActivityEvent) -> None:
        await failed.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        finished.append(event)

    bus.subscribe_all(slow)
    bus.subscribe_all(failing_first)
    event = make_event()

    # Act
    with capture_logs() as logs:
        await bus.emit(event)

    # Assert: emit returned only after the slow handler completed, and it was not cancelled.
    assert finished == [event]
    assert [entry["handler"] for entry in failures(logs)] == [
        "test_a_slow_handler_finishes_although_another_failed_first.<locals>.failing_first"
    ]


async def test_a_failure_is_logged_when_another_handler_unsubscribes_during_emit() -> None:
    # Arrange: the first handler unsubscribes itself (as an app shutting down does to the
    # process-wide bus while another app's listener emits); the second one fails.
    bus = EventBus()

    async def leaving(event: AgentActivityEvent) -> None:
        bus.unsubscribe(leaving)

    bus.subscribe_all(leaving)
    bus.subscribe_all(failing)

    # Act
    with capture_logs() as logs:
        await bus.emit(make_event())

    # Assert
    assert [entry["handler"] for entry in failures(logs)] == ["failing"]


async def test_a_handler_failing_when_called_does_not_stop_the_others() -> None:
    # Arrange: a valid `EventHandler` (a callable returning an awaitable) that checks its
    # input before returning the awaitable, and fails that check.
    bus = EventBus()
    working = Collecting()

    def checking(event: AgentActivityEvent) -> Awaitable[None]:
        raise HandlerFailedError("rejected before awaiting")

    handler: EventHandler = checking
    bus.subscribe_all(handler)
    bus.subscribe_all(working.handle)
    event = make_event()

    # Act
    with capture_logs() as logs:
        await bus.emit(event)

    # Assert
    assert working.received == [event]
    assert len(failures(logs)) == 1
