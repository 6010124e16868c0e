"""Shared activity plumbing: idempotency keys, event drafts, chunk batching, heartbeats.

Every persisted event carries the key `f"{workflow_id}:{activity_id}:{index}"`, where
`index` names the event's place in its activity (never the attempt), so a retried
activity writes nothing twice and leaves no gap in `sequence_number`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models import StreamUsage
from activities.policies import CHUNK_FLUSH_INTERVAL_SECONDS, LLM_HEARTBEAT_INTERVAL_SECONDS
from agent.contract.errors import WorkflowErrorType
from agent.db.session import DatabaseSessionManager
from agent.events.notify import publish_ephemeral
from agent.events.types import AgentActivityEvent, AgentRole, EventStatus, EventType
from agent.llm.client import LLMStream
from agent.observability.tracing import with_trace_id
from agent.repositories.events import EventDraft, EventRepository

logger = structlog.get_logger(__name__)

CHUNK_MAX_CHARS = 2000
"""A chunk batch is flushed early at this size, keeping each NOTIFY payload small."""


def event_key(index: int | str) -> str:
    """Idempotency key of the `index`-th event of the running activity."""
    info = activity.info()
    return f"{info.workflow_id}:{info.activity_id}:{index}"


def draft(
    index: int | str,
    type_: EventType,
    *,
    task_id: UUID,
    session_id: UUID | None,
    message: str = "",
    milestone_id: UUID | None = None,
    agent: AgentRole | None = None,
    status: EventStatus | None = None,
    details: dict[str, Any] | None = None,
) -> EventDraft:
    """Build one event draft of the running activity with its idempotency key."""
    return EventDraft(
        idempotency_key=event_key(index),
        event=AgentActivityEvent(
            type=type_,
            session_id=session_id,
            task_id=task_id,
            milestone_id=milestone_id,
            agent=agent,
            status=status,
            message=message,
            details=with_trace_id(details),  # links the stored event to its trace
        ),
    )


def task_not_found(task_id: UUID) -> ApplicationError:
    """The non-retryable error of an activity whose task does not exist."""
    return ApplicationError(
        f"task {task_id} does not exist", type=WorkflowErrorType.TASK_NOT_FOUND, non_retryable=True
    )


def milestone_not_found(task_id: UUID, key: str) -> ApplicationError:
    """The non-retryable error of an activity whose milestone row does not exist.

    Retrying cannot bring back a row the plan never stored (or a database lost), so the
    workflow hears about it at once instead of after the whole retry policy.
    """
    return ApplicationError(
        f"milestone {key!r} of task {task_id} does not exist",
        type=WorkflowErrorType.MILESTONE_NOT_FOUND,
        non_retryable=True,
    )


async def find_event(
    session: AsyncSession, task_id: UUID, index: int | str
) -> AgentActivityEvent | None:
    """Return the stored event of the running activity at `index`, if a former attempt wrote it."""
    return await EventRepository(session).get_by_key(task_id, event_key(index))


class StreamHeartbeat:
    """Heartbeats of one LLM activity attempt, each carrying what it has streamed so far.

    Temporal keeps the last details it received across attempts, so a worker killed
    mid-stream leaves its running usage behind for the next attempt to bill. Every
    heartbeat of the attempt must go through here: one without details would erase them.
    """

    def __init__(self) -> None:
        self._attempt = activity.info().attempt
        self._stream: LLMStream | None = None

    def watch(self, stream: LLMStream) -> None:
        """Report `stream`'s usage from now on (call once it is open)."""
        self._stream = stream

    def usage(self) -> StreamUsage:
        """What the attempt has streamed so far (zero before the stream opened)."""
        if self._stream is None:
            return StreamUsage(activity_attempt=self._attempt)
        partial = self._stream.partial_response()
        return StreamUsage(
            activity_attempt=self._attempt,
            input_tokens=partial.usage.input_tokens,
            output_tokens=partial.usage.output_tokens,
            cost_usd=partial.cost_usd,
            estimated=partial.usage.estimated,
        )

    def __call__(self) -> None:
        """Heartbeat with the running usage."""
        activity.heartbeat(self.usage().model_dump(mode="json"))


@contextlib.asynccontextmanager
async def heartbeating(
    beat: StreamHeartbeat, interval: float = LLM_HEARTBEAT_INTERVAL_SECONDS
) -> AsyncIterator[None]:
    """Heartbeat in the background while the body runs.

    Heartbeats prove the worker is alive and carry cancellation to the activity; a hung
    provider is caught by the LLM client's read timeout, not by a missing heartbeat.
    The first background beat waits one interval: the SDK sends a first heartbeat at
    once and throttles the next ones, so the first should be the one that carries the
    prompt's tokens (sent by the caller when the stream opens).
    """

    async def beat_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            beat()

    task = asyncio.create_task(beat_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ChunkPublisher:
    """Batches streamed text into `LLM_CHUNK` notifications about every 100 ms.

    Chunks are ephemeral (NOTIFY only, never stored): NOTIFY takes a global lock at
    commit, so one notification per token would throttle the whole database. The first
    text of a stream is published at once, not with the first batch: the time to the
    first token a user sees is the model's own, not the model's plus a batch interval.
    """

    def __init__(
        self,
        db: DatabaseSessionManager,
        beat: StreamHeartbeat,
        *,
        task_id: UUID,
        session_id: UUID | None,
        milestone_id: UUID | None,
        agent: AgentRole,
        milestone_attempt: int | None = None,
        interval: float = CHUNK_FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self._db = db
        self._beat = beat
        self._task_id = task_id
        self._session_id = session_id
        self._milestone_id = milestone_id
        self._agent = agent
        self._milestone_attempt = milestone_attempt
        self._interval = interval
        self._buffer: list[str] = []
        self._size = 0
        self._last_flush = time.monotonic()
        self._index = 0
        self.published = 0

    async def add(self, delta: str) -> None:
        """Buffer a delta; flush the stream's first text at once, then batch.

        A batch is flushed when the interval passed or it is large.
        """
        self._buffer.append(delta)
        self._size += len(delta)
        if (
            (self._index == 0 and self._size > 0)
            or time.monotonic() - self._last_flush >= self._interval
            or self._size >= CHUNK_MAX_CHARS
        ):
            await self.flush()

    async def flush(self) -> None:
        """Send the buffered text as one `LLM_CHUNK` (best effort: chunks are live-only)."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer, self._size = [], 0
        info = activity.info()
        event = AgentActivityEvent(
            type=EventType.LLM_CHUNK,
            session_id=self._session_id,
            task_id=self._task_id,
            milestone_id=self._milestone_id,
            agent=self._agent,
            message=text,
            details={
                "attempt": info.attempt,
                "milestone_attempt": self._milestone_attempt,
                "chunk": self._index,
                "text": text,
                "activity_id": info.activity_id,
            },
        )
        self._index += 1
        self._beat()
        try:
            async with self._db.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await publish_ephemeral(auto, event)
            self.published += 1
        except Exception as exc:  # a lost live chunk must never fail the LLM call
            logger.warning("llm_chunk_publish_failed", error=str(exc), task_id=str(self._task_id))
