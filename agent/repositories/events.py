"""The event log: gapless per-task sequence numbers, idempotent appends, NOTIFY on commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Event, Task
from agent.events.notify import StoredNotification, notify
from agent.events.types import EPHEMERAL_EVENT_TYPES, AgentActivityEvent
from agent.repositories.base import MAX_PAGE_SIZE, check_page_size
from agent.repositories.errors import (
    EventSequenceConflictError,
    InvalidEventError,
    RecordNotFoundError,
)

logger = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY_CHARS = 255
SESSION_LOCK_NAMESPACE = 7201
"""First key of the two-key advisory lock taken per session while appending events."""


class EventDraft(BaseModel):
    """An event to store, with the key that makes storing it idempotent.

    Attributes:
        idempotency_key: Unique per task; convention
            `f"{workflow_id}:{activity_id}:{index}"` (index within the activity, not the
            attempt), so a retried activity produces the same keys.
        event: The event; its `sequence_number` is ignored and allocated on append.
    """

    model_config = ConfigDict(frozen=True)

    idempotency_key: str = Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS)
    event: AgentActivityEvent


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A stored event with its global row id, the resume position of session streams.

    Attributes:
        event_id: `events.id`; strictly increasing in commit order within one session.
        event: The event.
    """

    event_id: int
    event: AgentActivityEvent


def _to_event(row: Event) -> AgentActivityEvent:
    return AgentActivityEvent.model_validate(
        {
            "type": row.type,
            "session_id": row.session_id,
            "task_id": row.task_id,
            "milestone_id": row.milestone_id,
            "sequence_number": row.sequence_number,
            "agent": row.agent,
            "status": row.status,
            "message": row.message,
            "details": row.details,
            "timestamp": row.created_at,
        }
    )


class EventRepository:
    """Stores and reads agent events.

    Never commits; the caller's transaction makes the events, the state change they
    describe and the NOTIFY atomic.
    """

    def __init__(self, session: AsyncSession) -> None:
        """Bind the repository to the caller's session.

        Args:
            session: The session (and transaction) to work in.
        """
        self.session = session

    @staticmethod
    def _validate(drafts: Sequence[EventDraft]) -> UUID:
        task_ids = {draft.event.task_id for draft in drafts}
        if len(task_ids) != 1:
            raise InvalidEventError("all drafts of one append must belong to one task")
        keys = [draft.idempotency_key for draft in drafts]
        if len(set(keys)) != len(keys):
            raise InvalidEventError("idempotency keys repeat within one append")
        ephemeral = [d.event.type for d in drafts if d.event.type in EPHEMERAL_EVENT_TYPES]
        if ephemeral:
            raise InvalidEventError(f"ephemeral event types are never stored: {ephemeral}")
        return task_ids.pop()

    async def append(self, drafts: Sequence[EventDraft]) -> list[AgentActivityEvent]:
        """Store events of one task with gapless sequence numbers, idempotently.

        Steps, all in the caller's transaction: lock the sessions' advisory locks (so
        `events.id` follows commit order within a session), lock the task row, drop
        drafts whose idempotency key is already stored, advance `tasks.last_event_seq`
        by the number of new events, insert them, and `pg_notify` a `stored`
        notification (delivered only if the transaction commits).

        Args:
            drafts: Events of ONE task, in order.

        Returns:
            The newly stored events with their sequence numbers (empty when every draft
            was already stored, e.g. on an activity retry).

        Raises:
            InvalidEventError: Drafts of several tasks, repeated keys or ephemeral types.
            RecordNotFoundError: When the task does not exist.
            EventSequenceConflictError: When an insert conflicted despite the lock (some
                writer bypassed this method); roll back.
        """
        if not drafts:
            return []
        task_id = self._validate(drafts)

        # Session lock first, then the task row: one fixed order, so appends to several
        # tasks of one session in one transaction cannot deadlock with each other.
        session_ids = sorted({str(d.event.session_id) for d in drafts if d.event.session_id})
        for session_id in session_ids:
            await self.session.execute(
                select(
                    func.pg_advisory_xact_lock(SESSION_LOCK_NAMESPACE, func.hashtext(session_id))
                )
            )
        locked = await self.session.execute(
            select(Task.id).where(Task.id == task_id).with_for_update()
        )
        if locked.scalar_one_or_none() is None:
            raise RecordNotFoundError("Task", task_id)

        # Checked under the row lock (a fresh snapshot in READ COMMITTED), so a concurrent
        # retry that committed the same keys is seen and the counter advances only by the
        # number of events truly inserted.
        keys = [draft.idempotency_key for draft in drafts]
        existing = set(
            (
                await self.session.execute(
                    select(Event.idempotency_key).where(
                        Event.task_id == task_id, Event.idempotency_key.in_(keys)
                    )
                )
            ).scalars()
        )
        new = [draft for draft in drafts if draft.idempotency_key not in existing]
        if not new:
            logger.debug("events_already_stored", task_id=str(task_id), count=len(drafts))
            return []

        last_seq = (
            await self.session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(last_event_seq=Task.last_event_seq + len(new))
                .returning(Task.last_event_seq)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        first_seq = last_seq - len(new) + 1

        rows: list[dict[str, Any]] = []
        for offset, draft in enumerate(new):
            event = draft.event
            rows.append(
                {
                    "task_id": task_id,
                    "sequence_number": first_seq + offset,
                    "type": event.type.value,
                    "session_id": event.session_id,
                    "milestone_id": event.milestone_id,
                    "agent": event.agent.value if event.agent else None,
                    "status": event.status.value if event.status else None,
                    "message": event.message,
                    "details": event.details,
                    "idempotency_key": draft.idempotency_key,
                    "created_at": event.timestamp,
                }
            )
        stmt = (
            pg_insert(Event)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[Event.task_id, Event.idempotency_key])
            .returning(Event.sequence_number)
        )
        inserted = list((await self.session.execute(stmt)).scalars())
        if len(inserted) != len(new):
            raise EventSequenceConflictError(
                f"allocated {len(new)} sequence numbers for task {task_id} "
                f"but inserted {len(inserted)} events"
            )

        stored = StoredNotification(
            task_id=task_id, session_id=new[0].event.session_id, seq=last_seq
        )
        await notify(self.session, stored.model_dump_json())
        logger.debug(
            "events_appended", task_id=str(task_id), first_seq=first_seq, last_seq=last_seq
        )
        return [
            draft.event.model_copy(update={"sequence_number": first_seq + offset})
            for offset, draft in enumerate(new)
        ]

    async def list_after(
        self, task_id: UUID, after_seq: int = 0, limit: int = MAX_PAGE_SIZE
    ) -> list[AgentActivityEvent]:
        """Stored events of a task with `sequence_number > after_seq`, in order.

        Args:
            task_id: The task.
            after_seq: Last sequence number the reader has (0 for everything).
            limit: Maximum number of events (1..MAX_PAGE_SIZE).

        Returns:
            The events, ascending by sequence number.

        Raises:
            InvalidPageSizeError: When `limit` is out of range.
        """
        check_page_size(limit)
        rows = await self.session.execute(
            select(Event)
            .where(Event.task_id == task_id, Event.sequence_number > after_seq)
            .order_by(Event.sequence_number)
            .limit(limit)
        )
        return [_to_event(row) for row in rows.scalars()]

    async def list_for_session_after(
        self, session_id: UUID, after_event_id: int = 0, limit: int = MAX_PAGE_SIZE
    ) -> list[SessionEvent]:
        """Stored events of every task of a session after a row id, in global order.

        `append` serialises the appends of one session on an advisory lock held until
        commit, so ids are assigned in commit order within a session and a reader
        resuming from the last `event_id` it saw misses nothing.

        Args:
            session_id: The session.
            after_event_id: Last `SessionEvent.event_id` the reader has (0 for all).
            limit: Maximum number of events (1..MAX_PAGE_SIZE).

        Returns:
            Events with their row ids, ascending by id.

        Raises:
            InvalidPageSizeError: When `limit` is out of range.
        """
        check_page_size(limit)
        rows = await self.session.execute(
            select(Event)
            .where(Event.session_id == session_id, Event.id > after_event_id)
            .order_by(Event.id)
            .limit(limit)
        )
        return [SessionEvent(event_id=row.id, event=_to_event(row)) for row in rows.scalars()]
