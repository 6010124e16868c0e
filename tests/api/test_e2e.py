"""End to end through the API: a real worker, the Temporal dev server and the simulator.

create -> events stream live -> pause at a breakpoint -> resume over HTTP -> disconnect
mid-task -> reconnect with `after_seq` -> the union of what the client saw equals the
stored log, with no duplicate and no gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, TaskStatus
from agent.llm.client import LLMClient
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.repositories.events import EventRepository
from agent.worker import build_worker
from tests.api.conftest import ApiUser, RunningApi
from tests.api.test_events_ws import open_socket, receive
from tests.api.test_http import assert_error_shape

WAIT_SECONDS = 120.0
TERMINAL = {EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED}


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[SimulatorServer]:
    """The LLM simulator on a loopback port."""
    config = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=40, hang_seconds=30)
    async with SimulatorServer(config) as server:
        yield server


@pytest.fixture
async def worker(
    temporal_dev_env: WorkflowEnvironment,
    simulator: SimulatorServer,
    session_manager: DatabaseSessionManager,
    api_settings: Settings,
) -> AsyncIterator[Worker]:
    """A real worker on the app's task queue, talking to the simulator."""
    settings = api_settings.model_copy(
        update={"llm_base_url": simulator.base_url, "max_concurrent_activities": 20}
    )
    async with LLMClient(settings) as llm:
        built = build_worker(temporal_dev_env.client, settings, session_manager, llm)
        async with built:
            yield built


async def stored_log(manager: DatabaseSessionManager, task_id: UUID) -> list[Any]:
    async with manager.session() as session:
        return await EventRepository(session).list_after(task_id, 0, 500)


async def test_task_lifecycle_streams_every_event_once_across_a_reconnect(
    api: RunningApi, alice: ApiUser, worker: Worker, session_manager: DatabaseSessionManager
) -> None:
    async with api.client(alice.key) as client:
        created = await client.post(
            "/v1/tasks",
            json={
                "goal": "Write three notes [milestones=3] [plan=sequential]",
                "complexity": "simple",
                "breakpoints": ["after_plan"],
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        path = f"/v1/tasks/{task_id}/events/ws"
        seen: list[dict[str, Any]] = []
        chunks: list[dict[str, Any]] = []

        ws = await open_socket(api, path, alice.key, after_seq=0)
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = await receive(ws)
                if message["kind"] == "event":
                    seen.append(message)
                    if message["event"]["type"] == EventType.BREAKPOINT_HIT:
                        break
        paused = (await client.get(f"/v1/tasks/{task_id}")).json()
        assert paused["status"] == TaskStatus.PAUSED
        breakpoint_id = paused["paused"]["breakpoint_id"]
        wrong = await client.post(
            f"/v1/tasks/{task_id}/resume", json={"breakpoint_id": "nope", "action": "continue"}
        )
        resumed = await client.post(
            f"/v1/tasks/{task_id}/resume",
            json={"breakpoint_id": breakpoint_id, "action": "continue"},
        )
        assert_error_shape(wrong, 409, "resume_rejected")
        assert "nope" in wrong.json()["error"]["message"]
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["action"] == "continue"

        # Read until the first milestone passed (its whole worker stream was live on this
        # socket), then drop the socket mid-task.
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = await receive(ws)
                if message["kind"] == "ephemeral":
                    chunks.append(message["event"])
                if message["kind"] == "event":
                    seen.append(message)
                    if message["event"]["type"] == EventType.MILESTONE_COMPLETED:
                        break
        await ws.close()
        await asyncio.sleep(0.3)  # events keep being stored while nobody listens

        ws = await open_socket(api, path, alice.key, after_seq=seen[-1]["cursor"])
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = await receive(ws)
                if message["kind"] == "event":
                    seen.append(message)
                    if message["event"]["type"] in TERMINAL:
                        break
        await ws.close()
        final = (await client.get(f"/v1/tasks/{task_id}")).json()
        finished_resume = await client.post(
            f"/v1/tasks/{task_id}/resume", json={"breakpoint_id": breakpoint_id}
        )
        finished_cancel = await client.post(f"/v1/tasks/{task_id}/cancel")
        rest = await client.get(f"/v1/tasks/{task_id}/events", params={"limit": 500})

    stored = await stored_log(session_manager, UUID(task_id))
    seqs = [m["event"]["sequence_number"] for m in seen]
    assert seqs == list(range(1, len(stored) + 1))
    assert [m["event"]["type"] for m in seen] == [e.type for e in stored]
    assert seen[-1]["event"]["type"] == EventType.TASK_COMPLETED
    assert final["status"] == TaskStatus.COMPLETED
    assert len(final["milestones"]) == 3
    assert final["totals"]["output_tokens"] > 0
    assert [e["sequence_number"] for e in rest.json()["items"]] == seqs
    assert_error_shape(finished_resume, 409, "task_finished")
    assert_error_shape(finished_cancel, 409, "task_finished")
    # The first milestone's worker streamed while the socket was live: its chunks, in
    # order, are exactly the text its LLM_COMPLETE stored.
    first = next(e for e in stored if e.type == EventType.LLM_COMPLETE and e.agent == "worker")
    streamed = [
        c for c in chunks if c["agent"] == "worker" and c["milestone_id"] == str(first.milestone_id)
    ]
    assert streamed, "no LLM_CHUNK reached a live socket"
    assert all(c["type"] == EventType.LLM_CHUNK for c in chunks)
    assert all(c["sequence_number"] is None for c in chunks)
    assert [c["details"]["chunk"] for c in streamed] == list(range(len(streamed)))
    assert "".join(c["details"]["text"] for c in streamed) == first.details["text"]


async def test_cancel_stops_a_running_task(api: RunningApi, alice: ApiUser, worker: Worker) -> None:
    async with api.client(alice.key) as client:
        created = await client.post(
            "/v1/tasks",
            json={"goal": "slow one [milestones=2] [tps=20] [output_tokens=2000]"},
        )
        task_id = created.json()["id"]
        ws = await open_socket(api, f"/v1/tasks/{task_id}/events/ws", alice.key)
        async with asyncio.timeout(WAIT_SECONDS):
            while (await receive(ws)).get("event", {}).get("type") != EventType.TASK_STARTED:
                pass
        cancelled = await client.post(f"/v1/tasks/{task_id}/cancel")
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = await receive(ws)
                if message["kind"] == "event" and message["event"]["type"] in TERMINAL:
                    break
        await ws.close()
        final = (await client.get(f"/v1/tasks/{task_id}")).json()

    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["cancel_requested"] is True
    assert message["event"]["type"] in TERMINAL
    assert final["status"] == TaskStatus.CANCELLED
    assert final["failure_reason"] == "cancelled"
    assert final["finished_at"] is not None
    assert final["paused"] is None
