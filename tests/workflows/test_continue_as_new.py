"""Tasks of any length: a run whose history nears its bound continues as new.

Every run's history stays under `history_max_events`; the task keeps its workflow id, its
event log stays gapless across runs, its totals equal the usage its events report, and a
resume or cancel that meets the boundary takes effect exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from temporalio.service import RPCError

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import DEFAULT_HISTORY_MAX_EVENTS, ResumeRequest, TaskProgress
from agent.db.models import BreakpointDecision
from agent.events.types import BreakpointKind, EventType, TaskStatus
from tests.temporal_history import runs_of
from tests.workflows.conftest import Engine
from tests.workflows.helpers import (
    Handle,
    Recorder,
    assert_gapless,
    milestones,
    task_row,
    wait_until,
)
from workflows.task_workflow import TaskWorkflow

QUERY_RPC_TIMEOUT = timedelta(seconds=5)
POLL_SECONDS = 0.05

LONG_TASK_TIMEOUT_SECONDS = 1_800
"""The 2,000-milestone task takes minutes (see docs/performance.md); a hang still ends."""

HISTORY_BOUND = 200
"""A bound small enough that 30 sequential milestones need several runs."""


def usage_sum(events: list[Any]) -> tuple[int, int]:
    """Input and output tokens the `LLM_COMPLETE` events (and failed attempts) report."""
    inp = out = 0
    for event in events:
        usage: dict[str, Any] | None = None
        if event.type == EventType.LLM_COMPLETE:
            usage = event.details.get("usage")
        elif event.type == EventType.AGENT_FAILED:
            usage = event.details.get("partial_usage")
        if usage:
            inp += int(usage["input_tokens"])
            out += int(usage["output_tokens"])
    return inp, out


async def decisions(engine: Engine, task_id: UUID) -> list[BreakpointDecision]:
    """The task's recorded breakpoint decisions."""
    async with engine.session_manager.session() as session:
        rows = await session.execute(
            select(BreakpointDecision).where(BreakpointDecision.task_id == task_id)
        )
        return list(rows.scalars())


async def test_long_sequential_task_continues_as_new_and_completes(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange
    handle: Handle = await engine.start(
        "Long job [milestones=30] [plan=sequential]",
        max_parallel=1,
        history_max_events=HISTORY_BOUND,
    )
    assert handle.first_execution_run_id is not None

    # Act
    result = await handle.result()

    # Assert: several runs, each under the bound, one task.
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 30
    runs = await runs_of(engine.client, handle.id, handle.first_execution_run_id)
    assert len(runs) >= 3
    assert all(len(run.events) < HISTORY_BOUND for run in runs), [len(r.events) for r in runs]
    events = await assert_gapless(engine, result.task_id)
    types = [EventType(e.type) for e in events]
    assert types.count(EventType.TASK_STARTED) == 1
    assert types.count(EventType.TASK_COMPLETED) == 1
    assert types.count(EventType.MILESTONE_COMPLETED) == 30
    assert usage_sum(events) == (result.totals.input_tokens, result.totals.output_tokens)
    task = await task_row(engine, result.task_id)
    assert (task.input_tokens, task.output_tokens) == usage_sum(events)
    rows = await milestones(engine, result.task_id)
    assert all(m.attempts == 1 for m in rows.values())
    # The progress query reaches the last run through the workflow id alone.
    progress = await engine.client.get_workflow_handle_for(TaskWorkflow.run, handle.id).query(
        TaskWorkflow.progress
    )
    assert progress.status == TaskStatus.COMPLETED
    assert len(progress.milestones) == 30
    # A run that ends in continue-as-new, and the run it started, for replay.
    await record_history(handle, "run1")
    handover = runs[0].events[-1].workflow_execution_continued_as_new_event_attributes
    await record_history(
        engine.client.get_workflow_handle(handle.id, run_id=handover.new_execution_run_id),
        "run2",
    )


async def test_a_pause_delays_the_boundary_and_its_resume_applies_once(
    dev_engine: Engine,
) -> None:
    # Arrange: every milestone pauses before it runs, so the bound is reached while a
    # breakpoint is open; the resume that lifts it races the boundary.
    handle: Handle = await dev_engine.start(
        "Reviewed job [milestones=12] [plan=sequential]",
        max_parallel=1,
        breakpoints=[BreakpointKind.BEFORE_MILESTONE],
        history_max_events=HISTORY_BOUND,
    )
    assert handle.first_execution_run_id is not None
    by_id = dev_engine.client.get_workflow_handle_for(TaskWorkflow.run, handle.id)
    seen: list[str] = []

    # Act: resume each pause through the workflow id (whatever run is current).
    while True:
        progress = await progress_of(by_id)
        if progress.status.is_terminal:
            break
        if progress.paused is None:
            await asyncio.sleep(POLL_SECONDS)
            continue
        pause = progress.paused
        answer = await by_id.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE),
        )
        assert answer.breakpoint_id == pause.breakpoint_id
        seen.append(pause.breakpoint_id)
    result = await handle.result()

    # Assert: every pause was resumed once, none lost across the runs.
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 12
    runs = await runs_of(dev_engine.client, handle.id, handle.first_execution_run_id)
    assert len(runs) >= 2
    assert all(len(run.events) < HISTORY_BOUND for run in runs)
    assert len(seen) == 12
    assert len(set(seen)) == 12  # breakpoint ids stay unique across runs
    recorded = await decisions(dev_engine, result.task_id)
    assert sorted(d.breakpoint_id for d in recorded) == sorted(seen)
    events = await assert_gapless(dev_engine, result.task_id)
    types = [EventType(e.type) for e in events]
    assert types.count(EventType.BREAKPOINT_HIT) == 12
    assert types.count(EventType.BREAKPOINT_RESUMED) == 12


async def test_cancel_at_the_boundary_stops_the_task_once(dev_engine: Engine) -> None:
    # Arrange
    handle: Handle = await dev_engine.start(
        "Long job [milestones=30] [plan=sequential]",
        max_parallel=1,
        history_max_events=HISTORY_BOUND,
    )
    assert handle.first_execution_run_id is not None
    first_run = handle.first_execution_run_id

    async def continued() -> bool:
        description = await dev_engine.client.get_workflow_handle(handle.id).describe()
        return description.run_id != first_run

    # Act: cancel as soon as the first run has handed over.
    await wait_until(continued)
    await dev_engine.client.get_workflow_handle(handle.id).cancel()
    result_status = await _final_status(dev_engine, handle)

    # Assert
    assert result_status == TaskStatus.CANCELLED
    task = await task_row(dev_engine, handle_task_id(handle))
    assert task.status == TaskStatus.CANCELLED
    events = await assert_gapless(dev_engine, task.id)
    types = [EventType(e.type) for e in events]
    assert types.count(EventType.TASK_CANCELLED) == 1
    assert types.count(EventType.TASK_STARTED) == 1


async def progress_of(handle: Handle) -> TaskProgress:
    """The `progress` query of the current run.

    A query that met a run in the instant it continued as new was seen to hang until its
    deadline on the time-skipping test server; it is asked again, with a short RPC
    timeout so that the test does not wait out the default deadline.
    """
    while True:
        try:
            return await handle.query(TaskWorkflow.progress, rpc_timeout=QUERY_RPC_TIMEOUT)
        except RPCError:
            await asyncio.sleep(POLL_SECONDS)


@pytest.mark.timeout(LONG_TASK_TIMEOUT_SECONDS)
async def test_two_thousand_milestones_complete_in_bounded_runs(engine: Engine) -> None:
    # Arrange: the long task, with the default history bound. The fewest
    # activities a milestone may take (one attempt, one verdict; no tools, no breakpoints)
    # and the instant simulator of the engine keep it short enough for every CI run.
    handle: Handle = await engine.start(
        "Very long job [milestones=2000] [plan=sequential]",
        max_parallel=1,
        max_plan_milestones=2_000,
    )
    assert handle.first_execution_run_id is not None

    # Act
    result = await handle.result()

    # Assert: several runs, each under the bound; one gapless log; totals = the calls.
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 2_000
    runs = await runs_of(engine.client, handle.id, handle.first_execution_run_id)
    assert len(runs) >= 2
    assert all(len(run.events) < DEFAULT_HISTORY_MAX_EVENTS for run in runs), [
        len(r.events) for r in runs
    ]
    events = await assert_gapless(engine, result.task_id)
    types = [EventType(e.type) for e in events]
    assert types.count(EventType.TASK_STARTED) == 1
    assert types.count(EventType.TASK_COMPLETED) == 1
    assert types.count(EventType.MILESTONE_COMPLETED) == 2_000
    assert usage_sum(events) == (result.totals.input_tokens, result.totals.output_tokens)
    task = await task_row(engine, result.task_id)
    assert (task.input_tokens, task.output_tokens) == usage_sum(events)


def handle_task_id(handle: Handle) -> UUID:
    """The task id of a `task-<id>` workflow."""
    return UUID(handle.id.removeprefix("task-"))


async def _final_status(engine: Engine, handle: Handle) -> TaskStatus:
    """Wait for the task row to reach a terminal status and return it."""
    task_id = handle_task_id(handle)

    async def terminal() -> bool:
        return TaskStatus((await task_row(engine, task_id)).status).is_terminal

    await wait_until(terminal)
    return TaskStatus((await task_row(engine, task_id)).status)
