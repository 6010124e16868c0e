"""Helpers shared by the workflow tests: polling, pauses, and the rows a task left."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import select
from temporalio.client import WorkflowHandle

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import PauseState, ResumeRequest, TaskResult
from agent.db.models import Milestone, Task
from tests.polling import wait_until as wait_for
from tests.workflows.conftest import Engine
from workflows.task_workflow import TaskWorkflow

Recorder = Callable[..., Awaitable[None]]
"""`record_history`: `await record(handle)` or `await record(handle, "run2")`."""
Handle = WorkflowHandle[TaskWorkflow, TaskResult]

POLL_SECONDS = 0.05
WAIT_LIMIT_SECONDS = 60.0


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until true (bounded so a broken test fails instead of hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_SECONDS
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(POLL_SECONDS)


async def wait_paused(handle: Handle) -> PauseState:
    """Wait until the task pauses at a breakpoint and return where."""
    found: list[PauseState] = []

    async def paused() -> bool:
        progress = await handle.query(TaskWorkflow.progress)
        if progress.paused is not None:
            found.append(progress.paused)
            return True
        if progress.status.is_terminal:
            raise AssertionError(f"task ended ({progress.status}) without pausing")
        return False

    await wait_until(paused)
    return found[-1]


async def milestones(engine: Engine, task_id: UUID) -> dict[str, Milestone]:
    """The task's milestone rows by key."""
    async with engine.session_manager.session() as session:
        rows = await session.execute(select(Milestone).where(Milestone.task_id == task_id))
        return {m.key: m for m in rows.scalars()}


async def task_row(engine: Engine, task_id: UUID) -> Task:
    """The task's row."""
    async with engine.session_manager.session() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def assert_gapless(engine: Engine, task_id: UUID) -> list[Any]:
    """Assert the task's events are numbered 1..n without gaps or duplicates; return them."""
    events = await engine.events(task_id)
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    assert len({e.idempotency_key for e in events}) == len(events)
    task = await task_row(engine, task_id)
    assert task.last_event_seq == len(events)
    return events


async def paused_at(handle: Handle, milestone_key: str) -> PauseState:
    """Wait for the pause before `milestone_key` and return it."""
    found: list[PauseState] = []

    async def paused() -> bool:
        progress = await handle.query(TaskWorkflow.progress)
        assert not progress.status.is_terminal, f"task ended ({progress.status})"
        if progress.paused is not None and progress.paused.milestone_key == milestone_key:
            found.append(progress.paused)
            return True
        return False

    await wait_for(paused, f"pause before {milestone_key}")
    return found[-1]


async def resume(handle: Handle, pause: PauseState) -> None:
    """Answer the breakpoint with `continue` (the `resume` update)."""
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE),
    )
