"""Side effects of the admission workflow: a queued task admitted or withdrawn, a task awaited.

Each is idempotent: a retry after the commit finds the state it wanted and says so.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.common import draft, task_not_found
from activities.models import AdmitInput, WatchInput, WithdrawInput
from activities.policies import WATCH_HEARTBEAT_INTERVAL_SECONDS
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, TaskStatus
from agent.repositories.errors import RecordNotFoundError
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository

logger = structlog.get_logger(__name__)

WITHDRAWN_REASON = "cancelled_while_queued"
"""`failure_reason` of a task cancelled before it started."""


class AdmissionActivities:
    """What `AdmissionWorkflow` does outside Temporal: task rows, events, other workflows."""

    def __init__(self, session_manager: DatabaseSessionManager, client: Client) -> None:
        """Inject dependencies.

        Args:
            session_manager: PostgreSQL sessions.
            client: Temporal client (waits for task workflows started by an earlier run).
        """
        self._db = session_manager
        self._client = client

    @activity.defn(name="admit_task")
    async def admit_task(self, data: AdmitInput) -> bool:
        """Move a queued task to `pending` (its workflow starts next).

        Returns:
            True when the task is pending now (also on a retry after the commit); False
            when it is no longer queued for another reason (cancelled, already started).
        """
        async with self._db.session() as session, session.begin():
            tasks = TaskRepository(session)
            try:
                moved = await tasks.set_status(
                    data.task_id, TaskStatus.PENDING, only_from={TaskStatus.QUEUED}
                )
            except RecordNotFoundError as exc:
                raise task_not_found(data.task_id) from exc
            if moved is not None:
                return True
            task = await tasks.get_by_id(data.task_id)
            return task is not None and task.status == TaskStatus.PENDING

    @activity.defn(name="withdraw_task")
    async def withdraw_task(self, data: WithdrawInput) -> bool:
        """Cancel a task that is still queued, with its `TASK_CANCELLED` event.

        Returns:
            True when the task is cancelled as queued (also on a retry after the commit);
            False when it had left the queue (the workflow cancels it where it runs).
        """
        async with self._db.session() as session, session.begin():
            tasks = TaskRepository(session)
            task = await tasks.get_by_id(data.task_id)
            if task is None:
                raise task_not_found(data.task_id)
            session_id = task.session_id
            # The append's lock order (session, then task row) before the update.
            await EventRepository(session).lock_task(data.task_id, [session_id])
            withdrawn = await tasks.set_status(
                data.task_id,
                TaskStatus.CANCELLED,
                only_from={TaskStatus.QUEUED},
                failure_reason=WITHDRAWN_REASON,
            )
            if withdrawn is None:
                task = await tasks.get_by_id(data.task_id)
                return task is not None and task.failure_reason == WITHDRAWN_REASON
            await EventRepository(session).append(
                [
                    draft(
                        0,
                        EventType.TASK_CANCELLED,
                        task_id=data.task_id,
                        session_id=session_id,
                        status=TaskStatus.CANCELLED,
                        message=f"Task cancelled: {WITHDRAWN_REASON}",
                        details={
                            "reason": WITHDRAWN_REASON,
                            "task_url": f"/v1/tasks/{data.task_id}",
                        },
                    )
                ]
            )
        logger.info("queued_task_withdrawn", task_id=str(data.task_id))
        return True

    @activity.defn(name="await_task_closed")
    async def await_task_closed(self, data: WatchInput) -> None:
        """Return when the task workflow has closed, however it closed (heartbeating)."""
        handle = self._client.get_workflow_handle(data.workflow_id)
        waiter = asyncio.ensure_future(handle.result())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=WATCH_HEARTBEAT_INTERVAL_SECONDS)
                if done:
                    break
                activity.heartbeat()
            waiter.result()
        except WorkflowFailureError:
            pass  # failed, cancelled, terminated or timed out: closed all the same
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise  # never started (or long gone): it holds no slot
        finally:
            waiter.cancel()
