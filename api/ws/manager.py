"""Serves event sockets: each one a live subscription, a sender and a receiver.

A socket whose queue overflows is closed with `CloseCode.SLOW_CONSUMER`; the client
reconnects with the last cursor it saw and misses nothing, because the database is the
truth. Fan-out lives in `api.ws.subscriptions`, the backfill/live seam in
`api.ws.streams`, one socket's I/O in `api.ws.connection`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from agent.contract.protocol import CloseCode
from agent.events.types import AgentActivityEvent
from api.ws.connection import close_socket, receive_pings, send_events
from api.ws.streams import EventStream, SessionStream, StoredEventSource, TaskStream
from api.ws.subscriptions import StreamScope, Subscription, SubscriptionRegistry

logger = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 500
RevocationWatch = Callable[[], Coroutine[Any, Any, None]]
"""Returns when an open socket's API key stops working."""
_CLOSE_REASONS = {
    CloseCode.SLOW_CONSUMER: "slow consumer",
    CloseCode.UNAUTHORIZED: "API key revoked or expired",
}


class WebSocketManager:
    """Keeps the live subscriptions and serves event sockets.

    Args:
        source: Where stored events are read from.
        queue_size: Capacity of each socket's queue.
        ping_interval_seconds: Idle time after which a keep-alive ping is sent.
        page_size: Rows read per backfill query.
    """

    def __init__(
        self,
        source: StoredEventSource,
        *,
        queue_size: int,
        ping_interval_seconds: float,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._source = source
        self._ping_interval = ping_interval_seconds
        self._page_size = page_size
        self._registry = SubscriptionRegistry(queue_size)
        self._sockets: set[WebSocket] = set()
        self._closing = False
        self.slow_consumer_closes = 0

    @property
    def subscription_count(self) -> int:
        """Number of live subscriptions."""
        return self._registry.count

    def subscribe(self, scope: StreamScope, target_id: UUID) -> Subscription:
        """Register a live subscription (before reading the backfill)."""
        return self._registry.subscribe(scope, target_id)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription; unknown ones are ignored."""
        self._registry.unsubscribe(subscription)

    async def dispatch(self, event: AgentActivityEvent) -> None:
        """Offer an event to every subscription of its task and session; never blocks.

        Args:
            event: A stored or ephemeral event.
        """
        self._registry.dispatch(event)

    async def close_all(self, code: CloseCode = CloseCode.SERVER_SHUTDOWN) -> None:
        """Close every open socket (server shutdown)."""
        self._closing = True
        await asyncio.gather(
            *(close_socket(ws, code, "server shutting down") for ws in list(self._sockets)),
            return_exceptions=True,
        )

    async def serve_task(
        self,
        websocket: WebSocket,
        task_id: UUID,
        after_seq: int,
        revoked: RevocationWatch | None = None,
    ) -> None:
        """Stream a task's events after `after_seq`, then live, until the client leaves.

        The caller has authorised the socket and accepted it; `revoked` returns when the
        socket's key stops working (the socket is then closed with 4401).
        """
        subscription = self.subscribe(StreamScope.TASK, task_id)
        stream = TaskStream(self._source, task_id, after_seq, self._page_size)
        await self._serve(websocket, subscription, stream, revoked)

    async def serve_session(
        self,
        websocket: WebSocket,
        session_id: UUID,
        user_id: UUID,
        after_id: int,
        revoked: RevocationWatch | None = None,
    ) -> None:
        """Stream a user's session events after row id `after_id`, then live ones."""
        subscription = self.subscribe(StreamScope.SESSION, session_id)
        stream = SessionStream(self._source, session_id, user_id, after_id, self._page_size)
        await self._serve(websocket, subscription, stream, revoked)

    async def _serve(
        self,
        websocket: WebSocket,
        subscription: Subscription,
        stream: EventStream,
        revoked: RevocationWatch | None,
    ) -> None:
        self._sockets.add(websocket)
        pong_wanted = asyncio.Event()
        sender = asyncio.create_task(
            send_events(websocket, subscription, stream, pong_wanted, self._ping_interval)
        )
        receiver = asyncio.create_task(receive_pings(websocket, pong_wanted))
        overflow = asyncio.create_task(subscription.overflowed.wait())
        tasks = {sender, receiver, overflow}
        key_watch = asyncio.create_task(revoked()) if revoked is not None else None
        if key_watch is not None:
            tasks.add(key_watch)
        code = CloseCode.NORMAL
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if key_watch is not None and key_watch in done:
                code = CloseCode.UNAUTHORIZED
                logger.info("ws_key_revoked", target_id=str(subscription.target_id))
            elif overflow in done:
                code = CloseCode.SLOW_CONSUMER
                self.slow_consumer_closes += 1
                logger.warning(
                    "ws_slow_consumer",
                    scope=subscription.scope.value,
                    target_id=str(subscription.target_id),
                )
            elif sender in done and not sender.cancelled() and sender.exception() is not None:
                exc = sender.exception()
                if not isinstance(exc, WebSocketDisconnect):
                    code = CloseCode.INTERNAL_ERROR
                    logger.error("ws_sender_failed", error=repr(exc))
        finally:
            self.unsubscribe(subscription)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._sockets.discard(websocket)
            if not self._closing:
                reason = _CLOSE_REASONS.get(code, "")
                await close_socket(websocket, code, reason)
