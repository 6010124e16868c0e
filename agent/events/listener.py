"""The PostgreSQL LISTEN relay: turns `agent_events` notifications into bus events.

One dedicated asyncpg connection (never a pool connection: a pooled one would be reset and
handed to others) LISTENs on the channel. The database row is the truth: a "stored"
notification only says "task T has events up to sequence S", and the relay reads the rows
it has not emitted yet. When the connection is lost it reconnects with backoff, LISTENs
again and backfills every task that wrote events around the outage, so nothing is missed.
Ephemeral notifications (`LLM_CHUNK`) carry the event itself and are emitted as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.config import to_libpq_url
from agent.db.models import Event
from agent.events.notify import (
    EVENTS_CHANNEL,
    EphemeralNotification,
    StoredNotification,
    parse_notification,
)
from agent.events.types import AgentActivityEvent
from agent.repositories.events import EventRepository

logger = structlog.get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
HEALTH_CHECK_INTERVAL_SECONDS = 5.0
HEALTH_CHECK_TIMEOUT_SECONDS = 3.0
RECONNECT_INITIAL_DELAY_SECONDS = 0.1
RECONNECT_MAX_DELAY_SECONDS = 5.0
READ_RETRY_DELAY_SECONDS = 0.5
BACKFILL_MARGIN = timedelta(seconds=60)
"""Rows are stamped with their transaction's start; reach back this far before an outage."""
PAGE_SIZE = 500
MAX_TRACKED_TASKS = 10_000

Emit = Callable[[AgentActivityEvent], Awaitable[None]]
SessionFactory = Callable[[], AsyncSession]


class PostgresEventListener:
    """Relays committed events from PostgreSQL to an emitter (the process's event bus).

    Args:
        dsn: PostgreSQL URL (any of the accepted schemes).
        session_factory: Returns a new `AsyncSession` (pooled) for reading event rows.
        emit: Called with every event, in per-task sequence order.
        channel: The NOTIFY channel.
        health_check_interval_seconds: How often the idle connection is probed.
    """

    def __init__(
        self,
        dsn: str,
        session_factory: SessionFactory,
        emit: Emit,
        *,
        channel: str = EVENTS_CHANNEL,
        health_check_interval_seconds: float = HEALTH_CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._dsn = to_libpq_url(dsn)
        self._session_factory = session_factory
        self._emit = emit
        self._channel = channel
        self._health_interval = health_check_interval_seconds
        self._notifications: asyncio.Queue[StoredNotification | EphemeralNotification] = (
            asyncio.Queue()
        )
        self._emitted: OrderedDict[UUID, int] = OrderedDict()
        self._connected = asyncio.Event()
        self._conn: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._relay_lock = asyncio.Lock()
        self.reconnect_count = 0

    @property
    def connected(self) -> bool:
        """Whether the LISTEN connection is up."""
        return self._connected.is_set()

    @property
    def backend_pid(self) -> int | None:
        """Server process id of the LISTEN connection (None while disconnected)."""
        if self._conn is None or self._conn.is_closed():
            return None
        pid: int = self._conn.get_server_pid()
        return pid

    async def start(self) -> None:
        """Start listening in the background; returns without waiting for the connection."""
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._connection_loop(), name="event-listener-connection"),
            asyncio.create_task(self._process_loop(), name="event-listener-process"),
        ]

    async def wait_connected(self, timeout_seconds: float) -> None:
        """Wait until the LISTEN connection is up.

        Raises:
            TimeoutError: When it is not up within `timeout_seconds`.
        """
        await asyncio.wait_for(self._connected.wait(), timeout_seconds)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._close_connection()

    async def _connection_loop(self) -> None:
        attempt = 0
        lost_at: datetime | None = None
        while not self._stopping:
            try:
                lost = await self._connect()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                delay = _backoff(attempt)
                attempt += 1
                logger.warning(
                    "event_listener_connect_failed", error=repr(exc), retry_in=round(delay, 2)
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._connected.set()
            logger.info("event_listener_listening", channel=self._channel, pid=self.backend_pid)
            if lost_at is not None:
                self.reconnect_count += 1
                await self._backfill_since(lost_at - BACKFILL_MARGIN)
            await self._watch(lost)
            self._connected.clear()
            lost_at = datetime.now(UTC)
            logger.warning("event_listener_connection_lost")
            await self._close_connection()

    async def _connect(self) -> asyncio.Event:
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(self._channel, self._on_notification)
        except BaseException:
            await conn.close(timeout=CONNECT_TIMEOUT_SECONDS)
            raise
        self._conn = conn
        return lost

    async def _watch(self, lost: asyncio.Event) -> None:
        """Return when the connection is gone (closed by the server or unresponsive)."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._health_interval)
                return
            try:
                await asyncio.wait_for(
                    self._conn.fetchval("SELECT 1"), HEALTH_CHECK_TIMEOUT_SECONDS
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), HEALTH_CHECK_TIMEOUT_SECONDS)
        except Exception:
            conn.terminate()

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notification = parse_notification(payload)
        except ValueError as exc:
            logger.warning("event_listener_bad_payload", error=repr(exc))
            return
        self._notifications.put_nowait(notification)

    async def _process_loop(self) -> None:
        while True:
            notification = await self._notifications.get()
            if isinstance(notification, EphemeralNotification):
                await self._emit(notification.event)
                continue
            # The row is the truth: retry the read until the database answers.
            while True:
                try:
                    await self._relay_task(notification.task_id, notification.seq)
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    logger.warning("event_listener_read_failed", error=repr(exc))
                    await asyncio.sleep(READ_RETRY_DELAY_SECONDS)
                except Exception as exc:
                    # SQLAlchemy wraps driver errors; treat them the same way.
                    logger.warning("event_listener_read_failed", error=repr(exc))
                    await asyncio.sleep(READ_RETRY_DELAY_SECONDS)

    async def _relay_task(
        self, task_id: UUID, up_to_seq: int | None, *, start_after: int | None = None
    ) -> None:
        """Emit a task's stored events after the last one emitted, up to `up_to_seq`.

        Args:
            task_id: The task.
            up_to_seq: Highest notified sequence number (None: read to the end).
            start_after: Where to start for a task never emitted before; by default the
                notified batch's last event (earlier ones predate this process's interest).
        """
        async with self._relay_lock:
            emitted = self._emitted.get(task_id)
            if emitted is None:
                emitted = start_after if start_after is not None else max(0, (up_to_seq or 1) - 1)
            if up_to_seq is not None and up_to_seq <= emitted:
                return
            while True:
                async with self._session_factory() as session:
                    events = await EventRepository(session).list_after(task_id, emitted, PAGE_SIZE)
                for event in events:
                    if event.sequence_number is None or event.sequence_number <= emitted:
                        continue
                    emitted = event.sequence_number
                    self._remember(task_id, emitted)
                    await self._emit(event)
                if len(events) < PAGE_SIZE:
                    break
            self._remember(task_id, emitted)

    def _remember(self, task_id: UUID, seq: int) -> None:
        self._emitted[task_id] = seq
        self._emitted.move_to_end(task_id)
        while len(self._emitted) > MAX_TRACKED_TASKS:
            self._emitted.popitem(last=False)

    async def _backfill_since(self, since: datetime) -> None:
        """Emit what was committed while the connection was down."""
        try:
            async with self._session_factory() as session:
                rows = (
                    await session.execute(
                        select(Event.task_id, func.min(Event.sequence_number))
                        .where(Event.created_at >= since)
                        .group_by(Event.task_id)
                    )
                ).all()
            for task_id, first_seq in rows:
                await self._relay_task(task_id, None, start_after=int(first_seq) - 1)
            logger.info("event_listener_backfilled", tasks=len(rows))
        except Exception as exc:
            # The connection loop watches the new connection; a failed read retries on the
            # next loss, and every socket fills its own gaps from the table anyway.
            logger.error("event_listener_backfill_failed", error=repr(exc))


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    ceiling = min(RECONNECT_MAX_DELAY_SECONDS, RECONNECT_INITIAL_DELAY_SECONDS * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)
