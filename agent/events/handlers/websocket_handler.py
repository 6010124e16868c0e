"""Event handler that hands every event to the WebSocket manager."""

from __future__ import annotations

from typing import Protocol

from agent.events.types import AgentActivityEvent


class EventDispatcher(Protocol):
    """What the handler needs of a WebSocket manager."""

    async def dispatch(self, event: AgentActivityEvent) -> None:
        """Offer an event to the interested sockets without blocking."""
        ...


class WebSocketEventHandler:
    """Relays bus events to WebSocket clients.

    The manager only queues (never awaits a client), so this handler returns at once
    and a slow client never delays the bus.

    Args:
        ws_manager: The application's WebSocket manager.
    """

    def __init__(self, ws_manager: EventDispatcher) -> None:
        self._ws_manager = ws_manager

    async def handle(self, event: AgentActivityEvent) -> None:
        """Offer one event to the sockets following its task or session.

        Args:
            event: The event to relay.
        """
        await self._ws_manager.dispatch(event)
