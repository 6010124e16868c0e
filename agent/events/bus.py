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
        if not self._handlers:
            return
        results = await asyncio.gather(
            *(handler(event) for handler in list(self._handlers)), return_exceptions=True
        )
        for handler, result in zip(list(self._handlers), results, strict=False):
            if isinstance(result, BaseException):
                logger.error(
                    "event_handler_failed",
                    handler=getattr(handler, "__qualname__", repr(handler)),
                    event_type=event.type,
                    task_id=str(event.task_id),
                    error=repr(result),
                )


@lru_cache(maxsize=1)
def get_event_bus() -> EventBus:
    """Return the process's event bus (created on first use, not at import)."""
    return EventBus()
