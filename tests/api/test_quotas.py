"""Running-task quotas: queued tasks, their positions, admission in order, cancelling in line.

Real API, PostgreSQL, Temporal dev server and worker; the tasks are real (simulated LLM).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.contract.admission import admission_workflow_id
from agent.db.models import Event
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, TaskStatus
from tests.api.conftest import ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished, wait_for_task, wait_paused
from tests.recorded_histories import RECORDED_ADMISSION_HISTORIES, record_history
from tests.recording_simulator import recording_simulator

ApiFactory = Callable[[Settings], Awaitable[RunningApi]]
QUOTA = 4
FLOOD = 30
# Each LLM call takes 300 ms, so tasks overlap long enough for a quota breach to show.
GOAL = "Quota task {i} [milestones=1] [ttft_ms=300]"
SIMPLE = {"complexity": "simple"}


def _max_overlap(tasks: list[dict[str, Any]]) -> int:
    """Most tasks ever running at once, from their started/finished timestamps."""
    edges: list[tuple[datetime, int]] = []
    for task in tasks:
        edges.append((datetime.fromisoformat(task["started_at"]), 1))
        edges.append((datetime.fromisoformat(task["finished_at"]), -1))
    running = peak = 0
    for _, step in sorted(edges):  # a finish before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


async def _count_events(manager: DatabaseSessionManager, task_id: str, type_: EventType) -> int:
    async with manager.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.task_id == UUID(task_id), Event.type == type_)
        )
    return int(count or 0)


async def test_a_flood_runs_at_most_the_quota_in_order_while_another_user_starts(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    bob: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange: alice floods the queue while no worker runs, so every task waits in line.
    api = await api_factory(api_settings.model_copy(update={"user_max_running_tasks": QUOTA}))
    client = temporal_dev_env.client
    async with (
        recording_simulator() as sim,
        api.client(alice.key) as http,
        api.client(bob.key) as other,
    ):
        created = [
            await http.post("/v1/tasks", json={"goal": GOAL.format(i=i), "complexity": "simple"})
            for i in range(FLOOD)
        ]
        ids = [r.json()["id"] for r in created]

        # Act: a worker starts; bob submits one task; the worker is replaced mid-queue.
        async with running_worker(client, api.settings, session_manager, sim.base_url):
            bobs = await other.post("/v1/tasks", json={"goal": "Bob's", "complexity": "simple"})
            bob_done = await wait_finished(other, bobs.json()["id"])
            await wait_for_task(http, ids[QUOTA * 2], lambda t: t["started_at"], "a start")
        async with running_worker(client, api.settings, session_manager, sim.base_url):
            finished = [await wait_finished(http, task_id) for task_id in ids]

    # Assert
    assert [r.status_code for r in created] == [201] * FLOOD
    assert {r.json()["status"] for r in created} == {TaskStatus.QUEUED.value}
    assert [r.json()["queue_position"] for r in created] == list(range(1, FLOOD + 1))
    assert bobs.status_code == 201, bobs.text
    assert bob_done["status"] == TaskStatus.COMPLETED.value
    started_after_bob = [t for t in finished if t["started_at"] > bob_done["started_at"]]
    assert len(started_after_bob) >= FLOOD - QUOTA * 3, "bob waited behind alice's flood"
    assert [t["status"] for t in finished] == [TaskStatus.COMPLETED.value] * FLOOD
    assert _max_overlap(finished) <= QUOTA
    assert _max_overlap(finished) >= 2, "the tasks did run side by side"
    start_order = sorted(finished, key=lambda t: t["started_at"])
    assert [t["id"] for t in start_order] == ids
    assert all(t["queue_position"] is None for t in finished)
    for task_id in ids:
        assert await _count_events(session_manager, task_id, EventType.TASK_STARTED) == 1


async def test_cancelling_a_queued_task_frees_its_place(
    api_factory: ApiFactory,
    api_settings: Settings,
    alice: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange: quota 1, held by a task waiting at a breakpoint; two more wait in line.
    api = await api_factory(api_settings.model_copy(update={"user_max_running_tasks": 1}))
    async with (
        recording_simulator() as sim,
        running_worker(temporal_dev_env.client, api.settings, session_manager, sim.base_url),
        api.client(alice.key) as http,
    ):
        holder = await http.post(
            "/v1/tasks",
            json={
                "goal": "Hold [milestones=1]",
                "complexity": "simple",
                "breakpoints": ["after_plan"],
            },
        )
        holder_id = holder.json()["id"]
        pause = (await wait_paused(http, holder_id))["paused"]
        second = (
            await http.post("/v1/tasks", json={"goal": "Second", "complexity": "simple"})
        ).json()
        third = (
            await http.post("/v1/tasks", json={"goal": "Third", "complexity": "simple"})
        ).json()

        # Act
        cancelled = await http.post(f"/v1/tasks/{second['id']}/cancel")
        second_end = await wait_finished(http, second["id"])
        third_waiting = (await http.get(f"/v1/tasks/{third['id']}")).json()
        listed = (await http.get("/v1/tasks", params={"status": "queued"})).json()["items"]
        resumed = await http.post(
            f"/v1/tasks/{holder_id}/resume",
            json={"breakpoint_id": pause["breakpoint_id"], "action": "continue"},
        )
        assert resumed.status_code == 200, resumed.text
        third_end = await wait_finished(http, third["id"])
        admission = temporal_dev_env.client.get_workflow_handle(admission_workflow_id(alice.id))
        # Nothing queued or running any more: the user's admission workflow ends.
        await admission.result()
        await record_history(
            admission, RECORDED_ADMISSION_HISTORIES, "cancelling_a_queued_task_frees_its_place"
        )

    # Assert
    assert (second["status"], second["queue_position"]) == ("queued", 1)
    assert (third["status"], third["queue_position"]) == ("queued", 2)
    assert cancelled.status_code == 202, cancelled.text
    assert second_end["status"] == TaskStatus.CANCELLED.value
    assert second_end["failure_reason"] == "cancelled_while_queued"
    assert second_end["started_at"] is None
    assert await _count_events(session_manager, second["id"], EventType.TASK_STARTED) == 0
    assert await _count_events(session_manager, second["id"], EventType.TASK_CANCELLED) == 1
    assert (third_waiting["status"], third_waiting["queue_position"]) == ("queued", 1)
    assert [(t["id"], t["queue_position"]) for t in listed] == [(third["id"], 1)]
    assert third_end["status"] == TaskStatus.COMPLETED.value


async def test_an_admin_sets_a_users_quota(
    api: RunningApi, alice: ApiUser, operator: ApiUser
) -> None:
    # Arrange
    async with api.client(operator.key) as admin, api.client(alice.key) as http:
        # Act
        before = await http.post("/v1/tasks", json={"goal": "Free", "complexity": "simple"})
        limited = await admin.put("/v1/admin/users/alice/limits", json={"max_running_tasks": 2})
        after = await http.post("/v1/tasks", json={"goal": "Queued", "complexity": "simple"})
        refused = await admin.put("/v1/admin/users/alice/limits", json={"max_running_tasks": 0})
        forbidden = await http.put("/v1/admin/users/alice/limits", json={"max_running_tasks": 9})

    # Assert
    assert before.json()["status"] == TaskStatus.PENDING.value
    assert before.json()["queue_position"] is None
    assert limited.status_code == 200, limited.text
    assert limited.json()["max_running_tasks"] == 2
    assert (after.json()["status"], after.json()["queue_position"]) == ("queued", 1)
    assert refused.status_code == 422
    assert "max_running_tasks" in refused.text
    assert forbidden.status_code == 403


async def test_queue_positions_come_from_the_rows_without_a_worker(
    api_factory: ApiFactory, api_settings: Settings, alice: ApiUser
) -> None:
    # Arrange: no worker: the positions come from the rows alone.
    api = await api_factory(api_settings.model_copy(update={"user_max_running_tasks": 1}))
    async with api.client(alice.key) as http:
        ids = [
            (await http.post("/v1/tasks", json={"goal": f"T{i}", "complexity": "simple"})).json()[
                "id"
            ]
            for i in range(3)
        ]

        # Act
        positions = [(await http.get(f"/v1/tasks/{i}")).json()["queue_position"] for i in ids]
        listed = (await http.get("/v1/tasks", params={"status": "queued"})).json()["items"]

    # Assert
    assert [(t["id"], t["queue_position"]) for t in listed] == [
        (ids[2], 3),
        (ids[1], 2),
        (ids[0], 1),
    ]
    assert positions == [1, 2, 3]
