"""Fans live events out to WebSocket clients, each behind its own bounded queue.

Every socket has an `asyncio.Queue` of bounded size and one sender task: `dispatch` only
ever does `put_nowait`, so a slow client never delays the listener nor other clients. A
socket whose queue overflows is closed with `CloseCode.SLOW_CONSUMER`; the client reconnects
with the last cursor it saw and misses nothing, because the database is the truth.

Seamless resume: the subscription is registered *before* the stored backfill is read, so an
event committed during the backfill is either in the backfill or in the queue (or both;
duplicates are dropped by sequence number). A live event whose sequence number jumps past
the last one sent triggers a read of the gap from the database; otherwise a socket never
reads the database for live events.

Each event is serialised once in `dispatch` (`LiveEvent`), not once per socket, and a
socket's sender drains everything queued before it waits again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from uuid import UUID

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agent.events.types import AgentActivityEvent
from api.ws.protocol import (
    CloseCode,
    LiveEvent,
    MessageKind,
    caught_up_message,
    control_message,
    ephemeral_message,
    event_message,
)

logger = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 500
CLOSE_TIMEOUT_SECONDS = 2.0
"""A stalled client cannot take the close handshake; give up on it after this long."""


class StoredEventSource(Protocol):
    """Reads stored events for the sockets' backfill and gap filling."""

    async def task_events_after(
        self, task_id: UUID, after_seq: int, limit: int
    ) -> Sequence[AgentActivityEvent]:
        """Return a task's stored events with `sequence_number > after_seq`, in order."""
        ...

    async def session_events_after(
        self, session_id: UUID, after_id: int, limit: int
    ) -> Sequence[tuple[int, AgentActivityEvent]]:
        """Return `(row id, event)` of a session's events with `id > after_id` (any user)."""
        ...

    async def session_positions(
        self, session_id: UUID, user_id: UUID, up_to_id: int
    ) -> dict[UUID, int]:
        """Return, per task of the user's session, the last sequence at `id <= up_to_id`."""
        ...

    async def session_task_ids(self, session_id: UUID, user_id: UUID) -> set[UUID]:
        """Return the ids of the user's tasks in a session."""
        ...


class StreamScope(StrEnum):
    """What a socket follows."""

    TASK = "task"
    SESSION = "session"


@dataclass(eq=False)
class Subscription:
    """One socket's live feed: a bounded queue and an overflow flag."""

    scope: StreamScope
    target_id: UUID
    queue: asyncio.Queue[LiveEvent]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: LiveEvent) -> None:
        """Queue an event without waiting; flag an overflow instead of blocking."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


class _SlowConsumerError(Exception):
    """Raised inside a socket's tasks when its queue overflowed."""


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
        self._queue_size = queue_size
        self._ping_interval = ping_interval_seconds
        self._page_size = page_size
        self._subscriptions: dict[tuple[StreamScope, UUID], set[Subscription]] = {}
        self._sockets: set[WebSocket] = set()
        self._closing = False
        self.slow_consumer_closes = 0

    @property
    def subscription_count(self) -> int:
        """Number of live subscriptions."""
        return sum(len(subs) for subs in self._subscriptions.values())

    def subscribe(self, scope: StreamScope, target_id: UUID) -> Subscription:
        """Register a live subscription (before reading the backfill)."""
        subscription = Subscription(scope, target_id, asyncio.Queue(maxsize=self._queue_size))
        self._subscriptions.setdefault((scope, target_id), set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription; unknown ones are ignored."""
        key = (subscription.scope, subscription.target_id)
        subs = self._subscriptions.get(key)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subscriptions[key]

    async def dispatch(self, event: AgentActivityEvent) -> None:
        """Offer an event to every subscription of its task and session; never blocks.

        Args:
            event: A stored or ephemeral event.
        """
        task_subs = self._subscriptions.get((StreamScope.TASK, event.task_id), ())
        session_subs = (
            self._subscriptions.get((StreamScope.SESSION, event.session_id), ())
            if event.session_id is not None
            else ()
        )
        if not task_subs and not session_subs:
            return
        live = LiveEvent(event)
        for sub in task_subs:
            sub.offer(live)
        for sub in session_subs:
            sub.offer(live)

    async def close_all(self, code: CloseCode = CloseCode.SERVER_SHUTDOWN) -> None:
        """Close every open socket (server shutdown)."""
        self._closing = True
        await asyncio.gather(
            *(_close(ws, code, "server shutting down") for ws in list(self._sockets)),
            return_exceptions=True,
        )

    async def serve_task(self, websocket: WebSocket, task_id: UUID, after_seq: int) -> None:
        """Stream a task's events after `after_seq`, then live, until the client leaves.

        The caller has authorised the socket and accepted it.
        """
        subscription = self.subscribe(StreamScope.TASK, task_id)
        stream = _TaskStream(self._source, task_id, after_seq, self._page_size)
        await self._serve(websocket, subscription, stream)

    async def serve_session(
        self, websocket: WebSocket, session_id: UUID, user_id: UUID, after_id: int
    ) -> None:
        """Stream a user's session events after row id `after_id`, then live ones."""
        subscription = self.subscribe(StreamScope.SESSION, session_id)
        stream = _SessionStream(self._source, session_id, user_id, after_id, self._page_size)
        await self._serve(websocket, subscription, stream)

    async def _serve(
        self, websocket: WebSocket, subscription: Subscription, stream: _Stream
    ) -> None:
        self._sockets.add(websocket)
        pong_wanted = asyncio.Event()
        sender = asyncio.create_task(self._send_loop(websocket, subscription, stream, pong_wanted))
        receiver = asyncio.create_task(_receive_loop(websocket, pong_wanted))
        overflow = asyncio.create_task(subscription.overflowed.wait())
        tasks = {sender, receiver, overflow}
        code = CloseCode.NORMAL
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if overflow in done:
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
                reason = "slow consumer" if code is CloseCode.SLOW_CONSUMER else ""
                await _close(websocket, code, reason)

    async def _send_loop(
        self,
        websocket: WebSocket,
        subscription: Subscription,
        stream: _Stream,
        pong_wanted: asyncio.Event,
    ) -> None:
        # The only writer of this socket: pings and pongs go through here too.
        for message in await stream.backfill():
            await websocket.send_text(message)
        await websocket.send_text(caught_up_message(stream.cursor))
        queue = subscription.queue
        getter: asyncio.Task[LiveEvent] | None = None
        pong: asyncio.Task[bool] | None = None
        try:
            while True:
                if pong_wanted.is_set():
                    pong_wanted.clear()
                    await websocket.send_text(control_message(MessageKind.PONG))
                if getter is None and not queue.empty():
                    # Busy: send what is queued without creating a waiter per event.
                    await self._send_live(websocket, stream, _drain(queue, []))
                    continue
                if getter is None:
                    getter = asyncio.create_task(queue.get())
                if pong is None:
                    pong = asyncio.create_task(pong_wanted.wait())
                # Pending waiters survive the timeout, so no queued item is lost to it.
                done, _ = await asyncio.wait(
                    {getter, pong}, timeout=self._ping_interval, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    await websocket.send_text(control_message(MessageKind.PING))
                    continue
                if pong in done:
                    pong = None  # answered at the top of the loop
                if getter in done:
                    # The getter's item is older than anything still queued.
                    first = getter.result()
                    getter = None
                    await self._send_live(websocket, stream, _drain(queue, [first]))
        finally:
            for waiter in (getter, pong):
                if waiter is not None:
                    waiter.cancel()

    @staticmethod
    async def _send_live(websocket: WebSocket, stream: _Stream, items: list[LiveEvent]) -> None:
        for item in items:
            for message in await stream.on_live(item):
                await websocket.send_text(message)


def _drain(queue: asyncio.Queue[LiveEvent], items: list[LiveEvent]) -> list[LiveEvent]:
    """Append everything queued right now to `items`, in order."""
    while True:
        try:
            items.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            return items


class _Stream(Protocol):
    cursor: int

    async def backfill(self) -> list[str]: ...

    async def on_live(self, item: LiveEvent) -> list[str]: ...


class _TaskStream:
    """Ordering state of a task socket: the cursor is the last sequence number sent."""

    def __init__(
        self, source: StoredEventSource, task_id: UUID, after_seq: int, page_size: int
    ) -> None:
        self._source = source
        self._task_id = task_id
        self._page_size = page_size
        self.cursor = after_seq

    async def _read_until(self, target: int | None) -> list[str]:
        messages: list[str] = []
        while target is None or self.cursor < target:
            page = await self._source.task_events_after(self._task_id, self.cursor, self._page_size)
            for event in page:
                seq = event.sequence_number
                if seq is None or seq <= self.cursor:
                    continue
                messages.append(event_message(event.model_dump_json(), seq))
                self.cursor = seq
            if len(page) < self._page_size:
                break
        return messages

    async def backfill(self) -> list[str]:
        return await self._read_until(None)

    async def on_live(self, item: LiveEvent) -> list[str]:
        seq = item.event.sequence_number
        if seq is None:
            return [item.task_message()]
        if seq <= self.cursor:
            return []
        if seq == self.cursor + 1:
            self.cursor = seq
            return [item.task_message()]
        # A gap: the notification for the missing events was lost or is still in flight.
        return await self._read_until(seq)


class _SessionStream:
    """Ordering state of a session socket.

    The cursor is the last event row id sent; per task, the last sequence number sent is
    tracked too, so an event committed late (lower row id) is still delivered once.
    Live stored events only wake the reader: rows are read back with their ids and
    filtered to the user's tasks.
    """

    def __init__(
        self,
        source: StoredEventSource,
        session_id: UUID,
        user_id: UUID,
        after_id: int,
        page_size: int,
    ) -> None:
        self._source = source
        self._session_id = session_id
        self._user_id = user_id
        self._page_size = page_size
        self.cursor = after_id
        self._positions: dict[UUID, int] = {}
        self._own_tasks: set[UUID] = set()
        self._foreign_tasks: set[UUID] = set()

    async def backfill(self) -> list[str]:
        self._positions = await self._source.session_positions(
            self._session_id, self._user_id, self.cursor
        )
        self._own_tasks = await self._source.session_task_ids(self._session_id, self._user_id)
        return await self._read()

    async def _read(self) -> list[str]:
        messages: list[str] = []
        while True:
            page = await self._source.session_events_after(
                self._session_id, self.cursor, self._page_size
            )
            for row_id, event in page:
                if not await self._is_own(event.task_id):
                    self.cursor = max(self.cursor, row_id)
                    continue
                seq = event.sequence_number or 0
                last = self._positions.get(event.task_id, 0)
                if seq > last + 1:
                    messages.extend(await self._fill_task_gap(event.task_id, last, seq))
                    last = self._positions.get(event.task_id, 0)
                self.cursor = max(self.cursor, row_id)
                if seq <= last:
                    continue
                self._positions[event.task_id] = seq
                messages.append(event_message(event.model_dump_json(), self.cursor))
            if len(page) < self._page_size:
                return messages

    async def _fill_task_gap(self, task_id: UUID, last: int, before: int) -> list[str]:
        # Rows of this task committed after rows with higher ids were read.
        messages: list[str] = []
        events = await self._source.task_events_after(
            task_id, last, min(self._page_size, before - last - 1)
        )
        for event in events:
            seq = event.sequence_number or 0
            if seq >= before or seq <= self._positions.get(task_id, 0):
                continue
            self._positions[task_id] = seq
            messages.append(event_message(event.model_dump_json(), self.cursor))
        return messages

    async def _is_own(self, task_id: UUID) -> bool:
        # Session ids are chosen by clients, so another user may share one: only the
        # user's own tasks pass.
        if task_id in self._own_tasks:
            return True
        if task_id in self._foreign_tasks:
            return False
        self._own_tasks = await self._source.session_task_ids(self._session_id, self._user_id)
        if task_id in self._own_tasks:
            return True
        self._foreign_tasks.add(task_id)
        return False

    async def on_live(self, item: LiveEvent) -> list[str]:
        event = item.event
        if not await self._is_own(event.task_id):
            return []
        if event.sequence_number is None:
            return [ephemeral_message(item.event_json)]
        if event.sequence_number <= self._positions.get(event.task_id, 0):
            return []
        return await self._read()


async def _receive_loop(websocket: WebSocket, pong_wanted: asyncio.Event) -> None:
    """Read client messages: ask the sender for a pong on a ping; end on disconnect."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            continue
        try:
            payload = json.loads(text)
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get("kind") == MessageKind.PING:
            pong_wanted.set()


async def _close(websocket: WebSocket, code: CloseCode, reason: str) -> None:
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    if websocket.client_state is WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), CLOSE_TIMEOUT_SECONDS)
