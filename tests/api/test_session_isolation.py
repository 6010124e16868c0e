"""A session socket never carries another user's events, even when both use one session id.

Session ids are chosen by clients, so two users can pick the same one. Alice's task streams
slowly while Bob's runs; Bob's session socket must get all of his own task (stored events
and live `LLM_CHUNK`s) and nothing of hers, and Alice's socket the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, TaskStatus
from tests.api.conftest import ApiUser, RunningApi
from tests.api.live_worker import running_worker, wait_finished
from tests.api.test_events_ws import open_socket
from tests.polling import wait_until
from tests.recording_simulator import recording_simulator

# About 6 s of streaming in all (plan, worker, verifier, summary at 40 tokens/s).
SLOW_GOAL = "Alice writes an essay [milestones=1] [plan=sequential] [tps=40] [output_tokens=160]"
QUICK_GOAL = "Bob writes a note [milestones=1] [plan=sequential]"


class SocketLog:
    """Every message a socket received, read in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))

    def events(self, task_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The events of one task (optionally only `event` or `ephemeral` messages)."""
        return [
            m["event"]
            for m in self.messages
            if "event" in m and m["event"]["task_id"] == task_id and kind in (None, m["kind"])
        ]

    def task_ids(self) -> set[str]:
        return {m["event"]["task_id"] for m in self.messages if "event" in m}

    def has(self, task_id: str, event_type: EventType) -> bool:
        return any(e["type"] == event_type for e in self.events(task_id))

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


@contextlib.asynccontextmanager
async def session_socket(
    api: RunningApi, session_id: uuid.UUID, key: str
) -> AsyncIterator[SocketLog]:
    ws = await open_socket(api, f"/v1/sessions/{session_id}/events/ws", key, after_seq=0)
    log = SocketLog(ws)
    try:
        yield log
    finally:
        await log.close()


async def test_session_socket_never_carries_another_users_events_on_a_shared_session_id(
    api: RunningApi,
    alice: ApiUser,
    bob: ApiUser,
    temporal_dev_env: WorkflowEnvironment,
    session_manager: DatabaseSessionManager,
) -> None:
    session_id = uuid.uuid4()
    async with (
        recording_simulator() as sim,
        running_worker(temporal_dev_env.client, api.settings, session_manager, sim.base_url),
        api.client(alice.key) as alice_http,
        api.client(bob.key) as bob_http,
        session_socket(api, session_id, alice.key) as alice_socket,
        session_socket(api, session_id, bob.key) as bob_socket,
    ):
        # Arrange: Alice's slow task is streaming on the shared session id.
        body = {"session_id": str(session_id), "complexity": "simple"}
        slow = await alice_http.post("/v1/tasks", json={"goal": SLOW_GOAL, **body})
        assert slow.status_code == 201, slow.text
        slow_id = slow.json()["id"]

        async def slow_streaming() -> bool:
            return bool(alice_socket.events(slow_id, "ephemeral"))

        await wait_until(slow_streaming, "a live chunk of Alice's task")

        # Act: Bob runs a task on the same session id while Alice's streams.
        quick = await bob_http.post("/v1/tasks", json={"goal": QUICK_GOAL, **body})
        assert quick.status_code == 201, quick.text
        quick_id = quick.json()["id"]
        alice_seen_at_quick_start = len(alice_socket.messages)

        async def quick_done() -> bool:
            return bob_socket.has(quick_id, EventType.TASK_COMPLETED)

        await wait_until(quick_done, "Bob's task completed on his socket")
        during_quick = alice_socket.messages[alice_seen_at_quick_start:]
        slow_final = await wait_finished(alice_http, slow_id)
        quick_final = await wait_finished(bob_http, quick_id)

        async def slow_done() -> bool:
            return alice_socket.has(slow_id, EventType.TASK_COMPLETED)

        await wait_until(slow_done, "Alice's task completed on her socket")
        # A last task of Bob's marks the end: whatever of Alice's task reached the app
        # before it would have been sent to Bob's socket before this task's events.
        marker = await bob_http.post("/v1/tasks", json={"goal": QUICK_GOAL, **body})
        marker_id = marker.json()["id"]

        async def marker_done() -> bool:
            return bob_socket.has(marker_id, EventType.TASK_COMPLETED)

        await wait_until(marker_done, "Bob's marker task completed on his socket")

    # Assert: the two tasks overlapped, Alice's streaming throughout Bob's.
    assert slow_final["status"] == quick_final["status"] == TaskStatus.COMPLETED
    assert slow_final["finished_at"] > quick_final["finished_at"]
    assert any(m["kind"] == "ephemeral" and m["event"]["task_id"] == slow_id for m in during_quick)
    # Bob's socket: his two tasks only, each whole and in order, with live chunks.
    assert bob_socket.task_ids() == {quick_id, marker_id}
    for task_id in (quick_id, marker_id):
        stored = bob_socket.events(task_id, "event")
        assert [e["sequence_number"] for e in stored] == list(range(1, len(stored) + 1))
        assert stored[0]["type"] == EventType.TASK_STARTED
        assert stored[-1]["type"] == EventType.TASK_COMPLETED
    bob_chunks = bob_socket.events(quick_id, "ephemeral")
    assert bob_chunks
    assert {c["type"] for c in bob_chunks} == {EventType.LLM_CHUNK}
    # Alice's socket: her task only, with its live chunks (so there was something to leak).
    assert alice_socket.task_ids() == {slow_id}
    alice_chunks = alice_socket.events(slow_id, "ephemeral")
    assert len(alice_chunks) > len(bob_chunks)
    assert {c["type"] for c in alice_chunks} == {EventType.LLM_CHUNK}
