"""`max_parallel` caps the milestones that execute at once, as the workflow history shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from agent.events.types import TaskStatus
from tests.workflows.conftest import Engine

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLOSE_EVENTS = frozenset(
    {
        HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
)


@dataclass
class ActivityRun:
    """When one activity (all its attempts) ran, from its history events."""

    started: datetime | None = None
    closed: datetime | None = None


def _scheduled_id(event: HistoryEvent) -> int:
    for attrs in (
        "activity_task_started_event_attributes",
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
    ):
        if event.HasField(attrs):
            return int(getattr(event, attrs).scheduled_event_id)
    raise AssertionError(f"not an activity event: {event.event_type}")


def activity_runs(history: WorkflowHistory, activity_type: str) -> list[ActivityRun]:
    """Start and close time of every activity of `activity_type` in a history."""
    runs: dict[int, ActivityRun] = {}
    for event in history.events:
        if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == activity_type:
                runs[event.event_id] = ActivityRun()
        elif event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            run = runs.get(_scheduled_id(event))
            if run is not None:
                run.started = event.event_time.ToDatetime()
        elif event.event_type in CLOSE_EVENTS:
            run = runs.get(_scheduled_id(event))
            if run is not None:
                run.closed = event.event_time.ToDatetime()
    return list(runs.values())


def peak_concurrency(runs: list[ActivityRun]) -> int:
    """The most runs open at one instant (a close at the same instant as a start comes first)."""
    marks: list[tuple[datetime, int]] = []
    for run in runs:
        assert run.started is not None, "an activity without a started event"
        assert run.closed is not None, "an activity without a close event"
        marks += [(run.started, 1), (run.closed, -1)]
    peak = running = 0
    for _, step in sorted(marks):
        running += step
        peak = max(peak, running)
    return peak


async def test_max_parallel_caps_concurrent_executes_at_exactly_two(engine: Engine) -> None:
    # Arrange: six independent milestones; a slow first token keeps each execute open
    # long enough that two of them surely overlap.
    handle = await engine.start(
        "Survey six cities [milestones=6] [plan=parallel] [ttft_ms=200]", max_parallel=2
    )

    # Act
    result = await handle.result()
    history = await handle.fetch_history()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 6
    runs = activity_runs(history, "execute")
    assert len(runs) == 6
    assert peak_concurrency(runs) == 2
