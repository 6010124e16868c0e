"""Scenario: the worker is SIGKILLed at the continue-as-new boundary of long tasks.

The cluster's tasks get `AGENT_HISTORY_MAX_EVENTS` at its minimum, so a sequential task of
`MILESTONES` milestones continues as new several times. The test watches the task's
current run (`describe`: run id and pending activities) and SIGKILLs the worker as soon as
the run id changed while the new run has started no activity yet: the previous run has
just handed over its carry-over and the new run's first workflow task (which restores it)
is in flight or just done. A new worker starts each time. The task runs alone (after its
fault-free reference), so no other task's LLM call is in flight at a kill: it would wait
out its heartbeat timeout and make the scenario long.

A kill counts as *at the boundary* when the histories, read after the task ended, confirm
it: the previous run ends in `ContinuedAsNew` naming the new run, and the new run's first
`ActivityTaskStarted` is later than the kill. Besides the invariants every scenario checks
(outcome of the fault-free run, gapless events, no duplicates, tokens recorded == served
within the allowance), every run's history stays under the bound.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHistory

from agent.contract.task import MIN_HISTORY_MAX_EVENTS
from tests.chaos.clients import Api, Follower, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.scenario import finish, reference_outcomes
from tests.temporal_history import CONTINUED, runs_of

HISTORY_BOUND = MIN_HISTORY_MAX_EVENTS
MILESTONES = 48
"""Enough for a task at `HISTORY_BOUND` to hand over about nine times: three kills land
even when a fast machine hands over before the watcher sees some of the runs."""
GOAL = f"Catalogue the tide pools [milestones={MILESTONES}][plan=sequential]"
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple", "max_parallel": 1}
TASKS = 1
KILLS_PER_TASK = 3
POLL_SECONDS = 0.01

ACTIVITY_STARTED = HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: the run that handed over, the run it started, when."""

    workflow_id: str
    previous_run_id: str
    new_run_id: str
    at: float
    """Wall-clock seconds (the dev server stamps its events with the same clock)."""


async def kill_at_boundaries(
    cluster: Cluster, workflow_id: str, kills: int
) -> tuple[list[Kill], int, str]:
    """Kill the worker at the next `kills` hand-overs of one task (or until it ends).

    Returns:
        The kills, the hand-overs seen too late (the new run had already started an
        activity: no kill then), and the task's first run id.
    """
    client = await cluster.temporal()
    handle = client.get_workflow_handle(workflow_id)
    first = await handle.describe()
    seen = first.run_id
    done: list[Kill] = []
    late = 0
    while len(done) < kills:
        description = await handle.describe()
        if description.close_time is not None and description.run_id == seen:
            break  # the task ended in the run already seen
        if description.run_id != seen:
            started = [
                a
                for a in description.raw_description.pending_activities
                if a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ]
            if started:
                late += 1
            else:
                cluster.kill_workers()
                done.append(Kill(workflow_id, seen, description.run_id, time.time()))
                cluster.start_worker()
            seen = description.run_id
        await asyncio.sleep(POLL_SECONDS)
    return done, late, first.run_id


def landed(kill: Kill, runs: list[WorkflowHistory]) -> bool:
    """Whether the histories confirm the kill fell between the hand-over and the new run's
    first activity."""
    by_id = {run.run_id: run for run in runs}
    previous, new = by_id.get(kill.previous_run_id), by_id.get(kill.new_run_id)
    if previous is None or new is None:
        return False
    last = previous.events[-1]
    if last.event_type != CONTINUED:
        return False
    attributes = last.workflow_execution_continued_as_new_event_attributes
    if attributes.new_execution_run_id != kill.new_run_id:
        return False
    first_started = next((e for e in new.events if e.event_type == ACTIVITY_STARTED), None)
    return first_started is None or first_started.event_time.ToDatetime().timestamp() > kill.at


async def _run(cluster: Cluster) -> None:
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    client = await cluster.temporal()
    kills: list[Kill] = []
    late = 0
    runs: dict[uuid.UUID, list[WorkflowHistory]] = {}
    try:
        reference = await reference_outcomes(cluster, api, [GOAL], **OPTIONS)
        task_ids: list[uuid.UUID] = []
        followers: list[Follower] = []
        following: list[asyncio.Task[None]] = []
        for _ in range(TASKS):
            task_id = await api.create_task(f"{GOAL} {new_tag()}", **OPTIONS)
            task_ids.append(task_id)
            followers.append(Follower(cluster.ws_url, task_id, owner.key))
            following.append(asyncio.create_task(followers[-1].run()))
            task = await api.get_task(task_id)
            done, missed, first_run = await kill_at_boundaries(
                cluster, task["workflow_id"], KILLS_PER_TASK
            )
            kills += done
            late += missed
            await api.wait_status(task_id)
            runs[task_id] = await runs_of(client, task["workflow_id"], first_run)
        report = await finish(
            cluster,
            "boundary-kills",
            api,
            task_ids,
            dict.fromkeys(task_ids, reference[GOAL]),
            followers,
            following,
        )
    finally:
        await api.aclose()
    every_run = [run for task_runs in runs.values() for run in task_runs]
    at_boundary = [k for k in kills if landed(k, every_run)]
    print(
        f"boundary kills: {len(kills)}, at a boundary {len(at_boundary)} (the previous run "
        f"continued as new, the new run had started no activity); hand-overs seen too late "
        f"to kill {late}; runs per task {[len(r) for r in runs.values()]}, largest run "
        f"{max(len(r.events) for r in every_run)} events (bound {HISTORY_BOUND})"
    )
    assert report.violations == []
    assert len(kills) == TASKS * KILLS_PER_TASK, "a task ended before its kills"
    assert len(at_boundary) == len(kills), [k for k in kills if k not in at_boundary]
    assert all(len(run.events) < HISTORY_BOUND for run in every_run)
    assert all(len(task_runs) > KILLS_PER_TASK for task_runs in runs.values())


@pytest.mark.chaos
@pytest.mark.chaos_quick
@pytest.mark.timeout(600)
async def test_worker_sigkill_at_continue_as_new(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory(
        extra_env={"AGENT_HISTORY_MAX_EVENTS": str(HISTORY_BOUND)}
    )
    await _run(cluster)
