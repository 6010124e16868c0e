"""`AdmissionWorkflow`: one per user with a running-task quota; hands out the user's slots.

The API signals-with-start `admission-{user_id}` (`submit`) with each new task of the user,
whose row it stored as `queued`. The workflow keeps the queue in submission order (creation
time, then id: the order `QuotaRepository.queue_positions` counts in) and the set of
running tasks. While fewer than the quota run, it admits the next task (`admit_task`:
`queued` -> `pending`) and starts its `TaskWorkflow` as a child that outlives it
(`ParentClosePolicy.ABANDON`); the child's completion frees the slot. `withdraw` cancels a
queued task (`withdraw_task`) or, when it has just started, its workflow.

Everything is in the workflow's history, so a worker or API restart loses nothing, and a
task is started once: its workflow id is `task-{id}` and only this workflow starts it. The
workflow completes when nothing is queued or running (the next task starts a new run), and
continues as new after `continue_as_new_after` admissions: tasks still running are then
carried over and awaited by `await_task_closed`, since a new run is not their parent.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from uuid import UUID

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.common import WorkflowIDReusePolicy as ReusePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.options import db_options, watch_options
from workflows.task_workflow import TaskWorkflow

with workflow.unsafe.imports_passed_through():
    from activities.admission import AdmissionActivities
    from activities.models import AdmitInput, WatchInput, WithdrawInput
    from agent.contract.admission import (
        AdmissionInput,
        AdmissionRequest,
        AdmissionState,
        QueuedTask,
        QuotaChange,
    )
    from agent.events.types import TaskStatus
    from agent.temporal import TASK_STATUS, USER_ID

CONTINUE_AS_NEW_AFTER = 500
"""Admissions per run: about 15 history events each keeps a run far below the limits."""

TASK_WORKFLOW_PREFIX = "task-"


def task_workflow_id(task_id: UUID) -> str:
    """The id of a task's workflow (the same as `Task.workflow_id`)."""
    return f"{TASK_WORKFLOW_PREFIX}{task_id}"


@workflow.defn(name="AdmissionWorkflow")
class AdmissionWorkflow:
    """A user's queue and running set; starts the user's tasks as their slots free."""

    @workflow.init
    def __init__(self, data: AdmissionInput) -> None:
        """All state, from the input (a continue-as-new carries it over).

        Signals can arrive before `run` starts (signal-with-start), so the state is built
        here, where the handlers already find it.
        """
        self._user_id = data.user_id
        self._max_running = data.max_running
        self._queue: list[QueuedTask] = sorted(data.queue, key=QueuedTask.order_key)
        self._queued_ids = {entry.task.task_id for entry in self._queue}
        self._running: dict[UUID, None] = dict.fromkeys(data.carried_running)
        self._withdrawals: list[UUID] = []
        self._admitted = 0
        self._continue_after = data.continue_as_new_after or CONTINUE_AS_NEW_AFTER

    @workflow.run
    async def run(self, data: AdmissionInput) -> None:
        """Admit tasks until nothing is queued or running, or the run is long enough."""
        for task_id in data.carried_running:
            self._track(self._watch(task_id), task_id)
        while True:
            await workflow.wait_condition(self._has_work)
            await self._apply_withdrawals()
            while self._queue and self._slot_free() and not self._withdrawals:
                await self._admit(self._queue.pop(0))
            if self._withdrawals:
                continue
            if not self._queue and not self._running:
                return
            if self._admitted >= self._continue_after:
                workflow.continue_as_new(
                    AdmissionInput(
                        user_id=self._user_id,
                        max_running=self._max_running,
                        queue=self._queue,
                        carried_running=list(self._running),
                        continue_as_new_after=data.continue_as_new_after,
                    )
                )

    @workflow.signal
    def submit(self, request: AdmissionRequest) -> None:
        """Queue a task (once: a task already queued or running is ignored)."""
        self._max_running = request.max_running
        task_id = request.entry.task.task_id
        if task_id in self._queued_ids or task_id in self._running:
            return
        bisect.insort(self._queue, request.entry, key=QueuedTask.order_key)
        self._queued_ids.add(task_id)

    @workflow.signal
    def withdraw(self, task_id: UUID) -> None:
        """Cancel a task: out of the queue, or its workflow when it has just started."""
        self._withdrawals.append(task_id)

    @workflow.signal
    def set_quota(self, change: QuotaChange) -> None:
        """Apply a new quota (None: unlimited) to the tasks still queued."""
        self._max_running = change.max_running

    @workflow.query
    def state(self) -> AdmissionState:
        """The queue in order and the tasks holding slots."""
        return AdmissionState(
            max_running=self._max_running,
            queued=[entry.task.task_id for entry in self._queue],
            running=list(self._running),
        )

    def _slot_free(self) -> bool:
        return self._max_running is None or len(self._running) < self._max_running

    def _has_work(self) -> bool:
        return (
            bool(self._withdrawals)
            or (bool(self._queue) and self._slot_free())
            or (not self._queue and not self._running)
            or self._admitted >= self._continue_after
        )

    async def _admit(self, entry: QueuedTask) -> None:
        """Mark the task pending and start its workflow; its slot is held until it closes."""
        task_id = entry.task.task_id
        self._queued_ids.discard(task_id)
        self._running[task_id] = None
        admitted = await workflow.execute_activity_method(
            AdmissionActivities.admit_task, AdmitInput(task_id=task_id), **db_options()
        )
        if not admitted:  # cancelled or started some other way meanwhile
            del self._running[task_id]
            return
        self._admitted += 1
        try:
            child = await workflow.start_child_workflow(
                TaskWorkflow.run,
                entry.task,
                id=task_workflow_id(task_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=ReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(USER_ID, str(entry.task.user_id)),
                        SearchAttributePair(TASK_STATUS, TaskStatus.PENDING.value),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            # Started by an API retry of the same request: not ours to await, but it holds
            # the slot all the same until it closes.
            self._track(self._watch(task_id), task_id)
            return
        self._track(self._await_child(child), task_id)

    async def _await_child(self, child: workflow.ChildWorkflowHandle[TaskWorkflow, object]) -> None:
        # Failed, cancelled or terminated: the slot is free all the same.
        with contextlib.suppress(ChildWorkflowError):
            await child

    async def _watch(self, task_id: UUID) -> None:
        await workflow.execute_activity_method(
            AdmissionActivities.await_task_closed,
            WatchInput(workflow_id=task_workflow_id(task_id)),
            **watch_options(),
        )

    def _track(self, closed: object, task_id: UUID) -> None:
        """Free the task's slot when `closed` (a coroutine awaiting its end) returns."""

        async def free_when_closed() -> None:
            await closed  # type: ignore[misc]
            self._running.pop(task_id, None)

        asyncio.create_task(free_when_closed())  # noqa: RUF006 - the workflow's loop owns it

    async def _apply_withdrawals(self) -> None:
        while self._withdrawals:
            task_id = self._withdrawals.pop(0)
            index = next((i for i, e in enumerate(self._queue) if e.task.task_id == task_id), None)
            if index is not None:
                self._queue.pop(index)
                self._queued_ids.discard(task_id)
            elif task_id in self._running:
                await self._cancel_started(task_id)
                continue
            # Also when this run never saw the task (its submit was lost): the row decides.
            await workflow.execute_activity_method(
                AdmissionActivities.withdraw_task, WithdrawInput(task_id=task_id), **db_options()
            )

    async def _cancel_started(self, task_id: UUID) -> None:
        handle = workflow.get_external_workflow_handle(task_workflow_id(task_id))
        try:
            await handle.cancel()
        except Exception:
            workflow.logger.info("withdrawn task already closed", extra={"task_id": task_id})
