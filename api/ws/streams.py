"""Per-socket ordering state: the stored backfill, and the seam between it and live events.

The subscription is registered *before* the stored backfill is read, so an event committed
during the backfill is either in the backfill or in the queue (or both; duplicates are
dropped by sequence number). A live event whose sequence number jumps past the last one
sent triggers a read of the gap from the database; otherwise a socket never reads the
database for live events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from agent.events.types import AgentActivityEvent
from api.ws.protocol import LiveEvent, ephemeral_message, event_message


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


class EventStream(Protocol):
    """What a socket's sender asks of its ordering state."""

    cursor: int

    async def backfill(self) -> list[str]:
        """Return the messages of the stored events after the cursor, advancing it."""
        ...

    async def on_live(self, item: LiveEvent) -> list[str]:
        """Return the messages a live event calls for (none, it, or a gap read first)."""
        ...


class TaskStream:
    """Ordering state of a task socket: the cursor is the last sequence number sent.

    Args:
        source: Where stored events are read from.
        task_id: The task followed.
        after_seq: The client's cursor.
        page_size: Rows read per query.
    """

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
        """Return the messages of the stored events after the cursor, advancing it."""
        return await self._read_until(None)

    async def on_live(self, item: LiveEvent) -> list[str]:
        """Return the messages a live event calls for (none, it, or a gap read first)."""
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


class SessionStream:
    """Ordering state of a session socket.

    The cursor is the last event row id sent; per task, the last sequence number sent is
    tracked too, so an event committed late (lower row id) is still delivered once.
    Live stored events only wake the reader: rows are read back with their ids and
    filtered to the user's tasks.

    Args:
        source: Where stored events are read from.
        session_id: The session followed.
        user_id: The caller; only their tasks' events pass.
        after_id: The client's cursor (an event row id).
        page_size: Rows read per query.
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
        """Return the messages of the stored events after the cursor, advancing it."""
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
        """Return the messages a live event calls for (none, an ephemeral one, or a read)."""
        event = item.event
        if not await self._is_own(event.task_id):
            return []
        if event.sequence_number is None:
            return [ephemeral_message(item.event_json)]
        if event.sequence_number <= self._positions.get(event.task_id, 0):
            return []
        return await self._read()
