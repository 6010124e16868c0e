"""Scenario: a user floods the queue past their running-task quota; the worker and API die.

User A (quota 4, `AGENT_USER_MAX_RUNNING_TASKS`) submits 100 tasks back to back; user B then
submits one. While A's queue drains, the worker is SIGKILLed and restarted, then the API.

Besides the invariants every scenario checks (outcomes, gapless events, no duplicates,
tokens recorded = served), measured from Temporal's own histories:
- A's admission workflow started each of A's tasks exactly once, in submission order
  (creation time, then id), across all its runs;
- at most 4 of A's task workflows were ever open at once;
- B's task started while A's flood was still queued.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client

from agent.contract.admission import admission_workflow_id
from tests.chaos.clients import Api, follow_all, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.invariants import check
from tests.chaos.scenario import finish, reference_outcomes

QUOTA = 4
FLOOD = 100
TEMPLATE = "Summarise a queued report [milestones=1][plan=sequential]"
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}
POLL_SECONDS = 0.2


async def open_intervals(
    client: Client, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime, datetime]]:
    """Each task workflow's first and last history event times (its open interval)."""
    intervals: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for task_id in task_ids:
        history = await client.get_workflow_handle(f"task-{task_id}").fetch_history()
        first, last = history.events[0], history.events[-1]
        intervals[task_id] = (first.event_time.ToDatetime(), last.event_time.ToDatetime())
    return intervals


def most_open_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at one instant (a close before an open)."""
    edges = [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    return peak


async def admission_order(client: Client, user_id: uuid.UUID) -> list[str]:
    """Task workflow ids in the order the user's admission runs started them."""
    runs = [
        run
        async for run in client.list_workflows(f'WorkflowId = "{admission_workflow_id(user_id)}"')
    ]
    started: list[str] = []
    for run in sorted(runs, key=lambda r: r.start_time):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        for event in (await handle.fetch_history()).events:
            if (
                event.event_type
                == HistoryEventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
            ):
                attributes = event.start_child_workflow_execution_initiated_event_attributes
                started.append(attributes.workflow_id)
    return started


async def finished_count(api: Api, task_ids: list[uuid.UUID]) -> int:
    """How many of the tasks have finished."""
    tasks = await asyncio.gather(*(api.get_task(t) for t in task_ids))
    return sum(1 for t in tasks if t["finished_at"] is not None)


async def after_finished(api: Api, task_ids: list[uuid.UUID], count: int) -> None:
    """Wait until at least `count` of the tasks have finished."""
    while await finished_count(api, task_ids) < count:
        await asyncio.sleep(POLL_SECONDS)


async def restart_api(cluster: Cluster) -> None:
    """SIGKILL the API process and start it again."""
    assert cluster.api is not None
    cluster.api.kill()
    await asyncio.sleep(0.5)
    cluster.start_api()
    await cluster.wait_api_ready()


@pytest.mark.chaos
@pytest.mark.xdist_group("kills")
@pytest.mark.timeout(900)
async def test_a_flood_past_the_quota_survives_worker_and_api_kills(
    cluster_factory: Callable[..., Any],
) -> None:
    # Arrange
    cluster: Cluster = await cluster_factory(extra_env={"AGENT_USER_MAX_RUNNING_TASKS": str(QUOTA)})
    flooder, other = cluster.users[0], cluster.users[1]
    api, api_b = Api(cluster.api_url, flooder.key), Api(cluster.api_url, other.key)
    rng = random.Random(7)
    try:
        reference = (await reference_outcomes(cluster, api, [TEMPLATE], **OPTIONS))[TEMPLATE]

        # Act: the flood, then B's task, then a worker SIGKILL and an API SIGKILL mid-queue.
        # One POST after another, none waiting for a task: concurrent POSTs would reach the
        # admission workflow in an order of their own while slots are still free.
        flood = [await api.create_task(f"{TEMPLATE} {new_tag()}", **OPTIONS) for _ in range(FLOOD)]
        b_task = await api_b.create_task(f"{TEMPLATE} {new_tag()}", **OPTIONS)
        followers = follow_all(cluster.ws_url, flooder.key, flood)
        followers += follow_all(cluster.ws_url, other.key, [b_task])
        runs = [asyncio.create_task(f.run()) for f in followers]
        await after_finished(api, flood, rng.randint(8, 16))
        cluster.kill_workers()
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        cluster.start_worker()
        await after_finished(api, flood, rng.randint(40, 60))
        await restart_api(cluster)
        await api_b.wait_status(b_task)
        await runs[-1]
        b_report = await check(
            cluster, "quota-flood B", [b_task], {b_task: reference}, followers[-1:]
        )
        report = await finish(
            cluster,
            "quota-flood",
            api,
            flood,
            dict.fromkeys(flood, reference),
            followers[:-1],
            runs[:-1],
        )
        rows = {t: await api.get_task(t) for t in flood}
        b_row = await api_b.get_task(b_task)
        client = await cluster.temporal()
        intervals = await open_intervals(client, [*flood, b_task])
        order = await admission_order(client, flooder.user_id)
    finally:
        await api.aclose()
        await api_b.aclose()

    # Assert
    queue = sorted(flood, key=lambda t: (rows[t]["created_at"], str(t)))
    flood_ids = {f"task-{t}" for t in flood}
    flood_order = [workflow_id for workflow_id in order if workflow_id in flood_ids]
    peak = most_open_at_once([intervals[t] for t in flood])
    b_start = intervals[b_task][0]
    started_after_b = sum(1 for t in flood if intervals[t][0] > b_start)
    print(
        f"quota-flood: {FLOOD} tasks at quota {QUOTA}, most open at once {peak}, "
        f"admissions {len(flood_order)} (distinct {len(set(flood_order))}), "
        f"A's tasks started after B's {started_after_b}"
    )
    assert report.violations == []
    assert b_report.violations == []
    assert b_row["status"] == reference.status.value
    assert flood_order == [f"task-{t}" for t in queue]
    assert peak <= QUOTA
    assert peak >= 2, "the flood's tasks did run side by side"
    assert started_after_b >= FLOOD // 2, "B waited behind A's flood"
