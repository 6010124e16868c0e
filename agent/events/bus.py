"""In-process event bus: decouples emitters from notification and logging handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import lru_cache

import structlog

from agent.events.types import AgentActivityEvent

logger = structlog.get_logger(__name__)

EventHandler = Callable[[AgentActivityEvent], Awaitable[None]]


class EventBus:
    """Delivers every emitted event to every subscribed handler.

    Handlers run concurrently; one that raises is logged and isolated, so it never
    breaks the other handlers or the emitter.
    """

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe_all(self, handler: EventHandler) -> None:
        """Register a handler for every event type.

        Args:
            handler: Coroutine function called with each event.
        """
        if handler not in self._handlers:
            self._handlers.append(handler)

    def unsubscribe(self, handler: EventHandler) -> None:
        """Remove a handler registered with `subscribe_all`; unknown handlers are ignored."""
        if handler in self._handlers:
            self._handlers.remove(handler)

    @property
    def handler_count(self) -> int:
        """Number of registered handlers."""
        return len(self._handlers)

    async def emit(self, event: AgentActivityEvent) -> None:
        """Deliver an event to every handler.

        Args:
            event: The event to deliver.
        """
        # One snapshot for the calls and for matching results: a handler unsubscribing
        # during the emit must not shift which failure is blamed on which handler.
        handlers = list(self._handlers)
        if not handlers:
            return
        results = await asyncio.gather(
            *(_deliver(handler, event) for handler in handlers), return_exceptions=True
        )
        for handler, result in zip(handlers, results, strict=True):
            if isinstance(result, BaseException):
                logger.error(
                    "event_handler_failed",
                    handler=getattr(handler, "__qualname__", repr(handler)),
                    event_type=event.type,
                    task_id=str(event.task_id),
                    error=repr(result),
                )


async def _deliver(handler: EventHandler, event: AgentActivityEvent) -> None:
    # Calling inside the coroutine turns a handler that raises before returning its
    # awaitable into a failed result like any other, instead of escaping `emit`.
    await handler(event)


@lru_cache(maxsize=1)
def get_event_bus() -> EventBus:
    """Return the process's event bus (created on first use, not at import)."""
    return EventBus()
