"""The PostgreSQL LISTEN relay: turns `agent_events` notifications into bus events.

One dedicated asyncpg connection (never a pool connection: a pooled one would be reset and
handed to others) LISTENs on the channel. The database row is the truth: a "stored"
notification only says "task T has events up to sequence S", and the relay reads the rows
it has not emitted yet. When the connection is lost it reconnects with backoff, LISTENs
again and backfills every task that wrote events around the outage, so nothing is missed.
Ephemeral notifications (`LLM_CHUNK`) carry the event itself and are emitted as they are.

Cost per notification matters (every socket of the process waits on this relay): the rows
are read on the LISTEN connection itself (one statement, no pool checkout, no transaction),
and notifications that queued up while a read was in flight are coalesced: one statement
(`agent.repositories.event_rows.read_windows`, the same read and row mapping as every other
event read) reads every new row of every task they name.
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
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from agent.config import to_asyncpg_url
from agent.events.notify import (
    EVENTS_CHANNEL,
    EphemeralNotification,
    StoredNotification,
    parse_notification,
)
from agent.events.types import AgentActivityEvent
from agent.repositories.event_rows import read_windows
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
"""Rows read per task per statement."""
MAX_BATCH_NOTIFICATIONS = 2_000
"""Queued notifications coalesced into one round of reads at most."""
MAX_TRACKED_TASKS = 10_000
READ_TO_END = 2**62
"""Upper sequence bound of a read that has no notified end (backfill after an outage)."""

Emit = Callable[[AgentActivityEvent], Awaitable[None]]
SessionFactory = Callable[[], AsyncSession]


class PostgresEventListener:
    """Relays committed events from PostgreSQL to an emitter (the process's event bus).

    Args:
        dsn: PostgreSQL URL (any of the accepted schemes).
        session_factory: Returns a new `AsyncSession` (pooled), for the backfill after an
            outage (live rows are read on the LISTEN connection).
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
        self._dsn = to_asyncpg_url(dsn)
        self._session_factory = session_factory
        self._emit = emit
        self._channel = channel
        self._health_interval = health_check_interval_seconds
        self._notifications: asyncio.Queue[StoredNotification | EphemeralNotification] = (
            asyncio.Queue()
        )
        self._emitted: OrderedDict[UUID, int] = OrderedDict()
        self._connected = asyncio.Event()
        # Its own engine without a pool: the LISTEN connection is never handed to others.
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._driver: Any = None  # the asyncpg connection under `_conn` (LISTEN, probes)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._relay_lock = asyncio.Lock()
        # One statement at a time on the LISTEN connection (reads and health probes).
        self._conn_lock = asyncio.Lock()
        self.reconnect_count = 0

    @property
    def connected(self) -> bool:
        """Whether the LISTEN connection is up."""
        return self._connected.is_set()

    @property
    def backend_pid(self) -> int | None:
        """Server process id of the LISTEN connection (None while disconnected)."""
        if self._driver is None or self._driver.is_closed():
            return None
        pid: int = self._driver.get_server_pid()
        return pid

    async def start(self) -> None:
        """Start listening in the background; returns without waiting for the connection."""
        self._stopping = False
        self._engine = create_async_engine(self._dsn, poolclass=NullPool)
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
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _connection_loop(self) -> None:
        attempt = 0
        lost_at: datetime | None = None
        while not self._stopping:
            try:
                lost = await self._connect()
            except (OSError, asyncpg.PostgresError, DBAPIError, TimeoutError) as exc:
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
        assert self._engine is not None, "start() first"
        conn = await asyncio.wait_for(self._engine.connect(), CONNECT_TIMEOUT_SECONDS)
        lost = asyncio.Event()
        try:
            # Autocommit: the reads open no transaction (and hold no snapshot) between them.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            driver = (await conn.get_raw_connection()).driver_connection
            if driver is None:  # pragma: no cover - a live connection has its driver
                raise ConnectionError("the LISTEN connection has no driver connection")
            driver.add_termination_listener(lambda _conn: lost.set())
            await driver.add_listener(self._channel, self._on_notification)
        except BaseException:
            await conn.close()
            raise
        self._conn, self._driver = conn, driver
        return lost

    async def _watch(self, lost: asyncio.Event) -> None:
        """Return when the connection is gone (closed by the server or unresponsive)."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._health_interval)
                return
            if self._conn_lock.locked():
                continue  # a read is using the connection right now: it is alive
            try:
                async with self._conn_lock:
                    # A liveness probe on the driver, not a data read.
                    await asyncio.wait_for(
                        self._driver.fetchval("SELECT 1"), HEALTH_CHECK_TIMEOUT_SECONDS
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        driver, self._driver = self._driver, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), HEALTH_CHECK_TIMEOUT_SECONDS)
        except Exception:
            if driver is not None:
                driver.terminate()

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notification = parse_notification(payload)
        except ValueError as exc:
            logger.warning("event_listener_bad_payload", error=repr(exc))
            return
        self._notifications.put_nowait(notification)

    async def _process_loop(self) -> None:
        while True:
            batch = [await self._notifications.get()]
            while len(batch) < MAX_BATCH_NOTIFICATIONS and not self._notifications.empty():
                batch.append(self._notifications.get_nowait())
            # Stored notifications in a row are merged per task: (first, last) notified seq.
            # An ephemeral one flushes them first, so the bus sees the same order.
            pending: dict[UUID, tuple[int, int]] = {}
            for notification in batch:
                if isinstance(notification, EphemeralNotification):
                    if pending:
                        await self._relay_notified(pending)
                        pending = {}
                    await self._emit(notification.event)
                    continue
                first, last = pending.get(notification.task_id, (notification.seq, 0))
                pending[notification.task_id] = (
                    min(first, notification.seq),
                    max(last, notification.seq),
                )
            if pending:
                await self._relay_notified(pending)

    async def _relay_notified(self, notified: dict[UUID, tuple[int, int]]) -> None:
        """Emit the stored events the notifications announced; retry until the read works.

        Args:
            notified: Per task, the lowest and highest sequence number notified.
        """
        while True:
            try:
                async with self._relay_lock:
                    windows: dict[UUID, tuple[int, int]] = {}
                    for task_id, (first, last) in notified.items():
                        # Never seen: start at the first notified batch (earlier history
                        # predates this process's interest; sockets read it themselves).
                        emitted = self._emitted.get(task_id, max(0, first - 1))
                        if last > emitted:
                            windows[task_id] = (emitted, last)
                    await self._relay_windows(windows)
                return
            except Exception as exc:
                # The row is the truth: retry the read until the database answers
                # (driver, network and SQLAlchemy errors alike).
                logger.warning("event_listener_read_failed", error=repr(exc))
                await asyncio.sleep(READ_RETRY_DELAY_SECONDS)

    async def _relay_task(self, task_id: UUID, *, start_after: int) -> None:
        """Emit every stored event of a task after `start_after` (or after the last emitted)."""
        async with self._relay_lock:
            emitted = self._emitted.get(task_id, start_after)
            await self._relay_windows({task_id: (emitted, READ_TO_END)})

    async def _relay_windows(self, windows: dict[UUID, tuple[int, int]]) -> None:
        """Read and emit each task's events in its `(after, up_to]` window, in order.

        The caller holds the relay lock. Reads go in pages of `PAGE_SIZE` per task; a task
        whose page came back short has nothing more to read.
        """
        while windows:
            events = await self._read_events(windows)
            reached: dict[UUID, int] = {}
            for event in events:
                seq = event.sequence_number
                emitted = self._emitted.get(event.task_id, windows[event.task_id][0])
                if seq is None or seq <= emitted:
                    continue
                self._remember(event.task_id, seq)
                reached[event.task_id] = seq
                await self._emit(event)
            more: dict[UUID, tuple[int, int]] = {}
            for task_id, (after, up_to) in windows.items():
                last = reached.get(task_id, after)
                self._remember(task_id, max(last, self._emitted.get(task_id, after)))
                if last == min(up_to, after + PAGE_SIZE) and last < up_to:
                    more[task_id] = (last, up_to)
            windows = more

    async def _read_events(self, windows: dict[UUID, tuple[int, int]]) -> list[AgentActivityEvent]:
        if not self._connected.is_set() or self._conn is None:
            raise ConnectionError("the LISTEN connection is down")
        pages = {t: (after, min(up_to, after + PAGE_SIZE)) for t, (after, up_to) in windows.items()}
        async with self._conn_lock:
            conn = self._conn
            if conn is None or self._driver is None or self._driver.is_closed():
                raise ConnectionError("the LISTEN connection is down")
            try:
                return await read_windows(conn, pages)
            except InterfaceError as exc:  # closed under us: the watcher reconnects
                raise ConnectionError("the LISTEN connection is down") from exc

    def _remember(self, task_id: UUID, seq: int) -> None:
        self._emitted[task_id] = seq
        self._emitted.move_to_end(task_id)
        while len(self._emitted) > MAX_TRACKED_TASKS:
            self._emitted.popitem(last=False)

    async def _backfill_since(self, since: datetime) -> None:
        """Emit what was committed while the connection was down."""
        try:
            async with self._session_factory() as session:
                first = await EventRepository(session).first_sequences_since(since)
            for task_id, first_seq in first.items():
                await self._relay_task(task_id, start_after=first_seq - 1)
            logger.info("event_listener_backfilled", tasks=len(first))
        except Exception as exc:
            # The connection loop watches the new connection; a failed read retries on the
            # next loss, and every socket fills its own gaps from the table anyway.
            logger.error("event_listener_backfill_failed", error=repr(exc))


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    ceiling = min(RECONNECT_MAX_DELAY_SECONDS, RECONNECT_INITIAL_DELAY_SECONDS * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)
