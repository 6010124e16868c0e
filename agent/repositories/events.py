"""The event log: gapless per-task sequence numbers, idempotent appends, NOTIFY on commit."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Event, Task
from agent.events.notify import EVENTS_CHANNEL, stored_payload_parts
from agent.events.types import EPHEMERAL_EVENT_TYPES, AgentActivityEvent, AgentRole, EventType
from agent.observability.metrics import observe_events_appended
from agent.repositories.base import MAX_PAGE_SIZE, check_page_size
from agent.repositories.errors import (
    EventSequenceConflictError,
    InvalidEventError,
    RecordNotFoundError,
)
from agent.repositories.event_append import APPEND_STATEMENT, LOCK_STATEMENT, drafts_json
from agent.repositories.event_rows import event_select, to_event

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
        started = time.perf_counter()
        task_id = self._validate(drafts)
        session_id = drafts[0].event.session_id

        await self.lock_task(task_id, [d.event.session_id for d in drafts])

        # A second statement, so that its snapshot (READ COMMITTED) is taken under the row
        # lock: a concurrent retry that committed the same keys is seen, and the counter
        # advances only by the number of events truly inserted.
        head, tail = stored_payload_parts(task_id, session_id)
        row = (
            await self.session.execute(
                APPEND_STATEMENT,
                {
                    "task_id": task_id,
                    "drafts": drafts_json(drafts),
                    "channel": EVENTS_CHANNEL,
                    "payload_head": head,
                    "payload_tail": tail,
                },
            )
        ).one_or_none()
        if row is None:
            logger.debug("events_already_stored", task_id=str(task_id), count=len(drafts))
            return []
        last_seq, inserted, new_ords = int(row.last_seq), int(row.inserted), list(row.new_ords)
        if inserted != len(new_ords):
            raise EventSequenceConflictError(
                f"allocated {len(new_ords)} sequence numbers for task {task_id} "
                f"but inserted {inserted} events"
            )
        first_seq = last_seq - len(new_ords) + 1
        new = [drafts[ord_] for ord_ in new_ords]
        logger.debug(
            "events_appended", task_id=str(task_id), first_seq=first_seq, last_seq=last_seq
        )
        observe_events_appended((d.event for d in new), time.perf_counter() - started)
        return [
            draft.event.model_copy(update={"sequence_number": first_seq + offset})
            for offset, draft in enumerate(new)
        ]

    async def lock_task(self, task_id: UUID, session_ids: Iterable[UUID | None] = ()) -> None:
        """Take the locks `append` takes, until the transaction ends (one statement).

        The task row lock serialises the writers of one task: a transaction that reads
        task-wide state after taking it (milestone counts for `TASK_PROGRESS`) sees every
        concurrent writer's commit. Session locks come first, then the task row: the one
        fixed order of `append`, so appends to several tasks of one session cannot
        deadlock with each other.

        Args:
            task_id: The task.
            session_ids: Sessions of the events to be appended (None entries ignored).

        Raises:
            RecordNotFoundError: When the task does not exist.
        """
        session_keys = sorted({str(s) for s in session_ids if s is not None})
        locked = await self.session.execute(
            LOCK_STATEMENT,
            {
                "task_id": task_id,
                "namespace": SESSION_LOCK_NAMESPACE,
                "session_keys": session_keys,
            },
        )
        if locked.scalar_one_or_none() is None:
            raise RecordNotFoundError("Task", task_id)

    async def get_by_key(self, task_id: UUID, idempotency_key: str) -> AgentActivityEvent | None:
        """The stored event of a task with this idempotency key, if any.

        Args:
            task_id: The task.
            idempotency_key: The key the event was appended with.

        Returns:
            The event, or None.
        """
        row = (
            (
                await self.session.execute(
                    event_select().where(
                        Event.task_id == task_id, Event.idempotency_key == idempotency_key
                    )
                )
            )
            .mappings()
            .one_or_none()
        )
        return to_event(row) if row is not None else None

    async def get_at(self, task_id: UUID, sequence_number: int) -> AgentActivityEvent | None:
        """The stored event of a task at a sequence number, if any.

        Args:
            task_id: The task.
            sequence_number: Its position in the task's log.

        Returns:
            The event, or None.
        """
        row = (
            (
                await self.session.execute(
                    event_select().where(
                        Event.task_id == task_id, Event.sequence_number == sequence_number
                    )
                )
            )
            .mappings()
            .one_or_none()
        )
        return to_event(row) if row is not None else None

    async def latest_of(
        self, task_id: UUID, type_: EventType, agent: AgentRole
    ) -> AgentActivityEvent | None:
        """The task's latest stored event of a type by an agent, if any.

        Args:
            task_id: The task.
            type_: The event type.
            agent: The agent that emitted it.

        Returns:
            The event with the highest sequence number, or None.
        """
        row = (
            (
                await self.session.execute(
                    event_select()
                    .where(
                        Event.task_id == task_id,
                        Event.type == type_.value,
                        Event.agent == agent.value,
                    )
                    .order_by(Event.sequence_number.desc())
                    .limit(1)
                )
            )
            .mappings()
            .one_or_none()
        )
        return to_event(row) if row is not None else None

    async def first_sequences_since(self, since: datetime) -> dict[UUID, int]:
        """Per task with events stored at or after `since`, the first such sequence number.

        Args:
            since: Earliest `created_at` (a transaction's start time) of interest.

        Returns:
            Task id -> lowest sequence number stored since then.
        """
        rows = await self.session.execute(
            select(Event.task_id, func.min(Event.sequence_number))
            .where(Event.created_at >= since)
            .group_by(Event.task_id)
        )
        return {task_id: int(seq) for task_id, seq in rows.all()}

    async def session_positions(
        self, session_id: UUID, user_id: UUID, up_to_event_id: int
    ) -> dict[UUID, int]:
        """Per task of the user's session, the highest sequence number at `id <= up_to_event_id`.

        Args:
            session_id: The session.
            user_id: Only tasks this user owns count.
            up_to_event_id: The session stream's position (`SessionEvent.event_id`).

        Returns:
            Task id -> last sequence number stored up to that position.
        """
        rows = await self.session.execute(
            select(Event.task_id, func.max(Event.sequence_number))
            .join(Task, Task.id == Event.task_id)
            .where(
                Event.session_id == session_id,
                Task.user_id == user_id,
                Event.id <= up_to_event_id,
            )
            .group_by(Event.task_id)
        )
        return {task_id: int(seq) for task_id, seq in rows.all()}

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
            event_select()
            .where(Event.task_id == task_id, Event.sequence_number > after_seq)
            .order_by(Event.sequence_number)
            .limit(limit)
        )
        return [to_event(row) for row in rows.mappings()]

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
            event_select()
            .add_columns(Event.id.label("event_id"))
            .where(Event.session_id == session_id, Event.id > after_event_id)
            .order_by(Event.id)
            .limit(limit)
        )
        return [
            SessionEvent(event_id=row["event_id"], event=to_event(row)) for row in rows.mappings()
        ]
