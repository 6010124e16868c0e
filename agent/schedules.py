"""The worker keeps the event retention Schedule in line with `AGENT_EVENT_RETENTION_DAYS`.

At each start the worker calls `ensure_retention_schedule`: with the setting, the Schedule
`agent-event-retention` exists, runs `RetentionWorkflow` daily on the worker's task queue
and is not paused; without it, an existing Schedule is paused (kept, with its history, so
setting the variable again resumes it). Every call converges on the same Schedule, so
workers starting together do not fight: a create that loses the race finds the winner's
Schedule already as wanted (its note names the settings) and leaves it alone.
"""

from __future__ import annotations

import enum
from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from agent.contract.retention import RETENTION_SCHEDULE_ID, RetentionInput
from workflows.retention_workflow import RetentionWorkflow

logger = structlog.get_logger(__name__)

RETENTION_EVERY = timedelta(days=1)
RETENTION_AT = timedelta(hours=3)
"""Runs daily at 03:00 UTC (the offset into each day since the epoch)."""

RETENTION_CATCHUP_WINDOW = timedelta(hours=12)
"""A run missed while Temporal was down still runs if it comes back within this; after a
longer outage the next day's run does the work (retention is not time-critical)."""

RETENTION_RUN_TIMEOUT = timedelta(hours=23)
"""A run that hangs ends before the next is due (overlap SKIP would skip it otherwise)."""

PAUSED_NOTE = "paused by a worker started without AGENT_EVENT_RETENTION_DAYS"


class ScheduleOutcome(enum.StrEnum):
    """What `ensure_retention_schedule` did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    PAUSED = "paused"
    ABSENT = "absent"
    UNCHECKED = "unchecked"
    """Retention is off and the server would not say whether a Schedule exists."""


def retention_note(retention_days: int, task_queue: str) -> str:
    """The Schedule's note: what it was set up with (compared to skip needless updates)."""
    return f"AGENT_EVENT_RETENTION_DAYS={retention_days} on task queue {task_queue}"


def retention_schedule(retention_days: int, task_queue: str) -> Schedule:
    """The Schedule that runs `RetentionWorkflow` daily with this retention.

    Args:
        retention_days: Tasks finished longer ago than this lose their events.
        task_queue: Where the worker running `RetentionWorkflow` polls.

    Returns:
        The Schedule (daily, overlap SKIP, a bounded catch-up window, unpaused).
    """
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionInput(retention_days=retention_days),
            id=RETENTION_SCHEDULE_ID,
            task_queue=task_queue,
            execution_timeout=RETENTION_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=RETENTION_EVERY, offset=RETENTION_AT)]
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=RETENTION_CATCHUP_WINDOW
        ),
        state=ScheduleState(note=retention_note(retention_days, task_queue)),
    )


async def ensure_retention_schedule(
    client: Client, retention_days: int | None, task_queue: str
) -> ScheduleOutcome:
    """Create, update or pause the retention Schedule to match the setting (idempotent).

    Args:
        client: Connected client (the project's data converter).
        retention_days: `AGENT_EVENT_RETENTION_DAYS` (None: retention off).
        task_queue: The worker's task queue.

    Returns:
        What was done.

    Raises:
        RPCError: With the setting, when the server refused to create or update the
            Schedule (the worker stops: the operator asked for retention).
    """
    handle = client.get_schedule_handle(RETENTION_SCHEDULE_ID)
    if retention_days is None:
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return ScheduleOutcome.ABSENT
            # Retention is off: a server without schedules (or a key not allowed to read
            # them) must not stop the worker.
            logger.warning("retention_schedule_unchecked", error=str(exc))
            return ScheduleOutcome.UNCHECKED
        if description.schedule.state.paused:
            return ScheduleOutcome.UNCHANGED
        await handle.pause(note=PAUSED_NOTE)
        return ScheduleOutcome.PAUSED
    wanted = retention_schedule(retention_days, task_queue)
    try:
        await client.create_schedule(RETENTION_SCHEDULE_ID, wanted)
    except ScheduleAlreadyRunningError:
        pass
    else:
        return ScheduleOutcome.CREATED
    updated = False

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal updated
        state = current.description.schedule.state
        if state.note == wanted.state.note and not state.paused:
            return None
        updated = True
        return ScheduleUpdate(schedule=wanted)

    await handle.update(update)
    return ScheduleOutcome.UPDATED if updated else ScheduleOutcome.UNCHANGED
