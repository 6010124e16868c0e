"""What a user does during chaos: create tasks over HTTP, follow them over WebSocket.

Both survive API restarts: HTTP calls are retried (creation with an `Idempotency-Key`),
and a follower reconnects with `after_seq` = the last cursor it saw, recording every
message exactly as received (duplicates included, so the checks can see them).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.events.types import EventType, TaskStatus

TERMINAL_EVENTS = frozenset(
    {EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED}
)
TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
RETRY_SECONDS = 0.3
RETRIED_STATUSES = frozenset({httpx.codes.SERVICE_UNAVAILABLE, httpx.codes.TOO_MANY_REQUESTS})
"""Restarts answer 503; a flood of polls may meet the per-key rate limit (429)."""
HTTP_TIMEOUT_SECONDS = 30.0
TASK_TIMEOUT_SECONDS = 600.0


def new_tag() -> str:
    """A unique marker put in a goal; the request recorder finds it in every prompt."""
    return f"tag-{uuid.uuid4().hex[:12]}"


class Api:
    """A user's HTTP client of the API, retrying through restarts."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request, retrying connection errors, 503s and 429s for a while."""
        deadline = time.monotonic() + TASK_TIMEOUT_SECONDS
        while True:
            try:
                response = await self.http.request(method, url, **kwargs)
                if response.status_code not in RETRIED_STATUSES:
                    return response
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(RETRY_SECONDS)

    async def create_task(self, goal: str, **options: Any) -> uuid.UUID:
        """Create a task (idempotently, so a retry after a restart makes no second one)."""
        response = await self.request(
            "POST",
            "/v1/tasks",
            json={"goal": goal, **options},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == httpx.codes.CREATED, response.text
        return uuid.UUID(response.json()["id"])

    async def get_task(self, task_id: uuid.UUID) -> dict[str, Any]:
        """GET the task."""
        response = await self.request("GET", f"/v1/tasks/{task_id}")
        assert response.status_code == httpx.codes.OK, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_status(
        self,
        task_id: uuid.UUID,
        statuses: frozenset[TaskStatus] = TERMINAL_STATUSES,
        limit_s: float = TASK_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Poll until the task reaches one of `statuses`."""
        deadline = time.monotonic() + limit_s
        while True:
            task = await self.get_task(task_id)
            if TaskStatus(task["status"]) in statuses:
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {task['status']}")
            await asyncio.sleep(0.5)


@dataclass
class Follower:
    """Follows one task's event socket to its end, reconnecting with `after_seq`."""

    ws_base: str
    task_id: uuid.UUID
    key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0
    connects: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    finished: bool = False

    async def run(self, limit_s: float = TASK_TIMEOUT_SECONDS) -> None:
        """Follow until the task's terminal event arrived."""
        deadline = time.monotonic() + limit_s
        while not self.finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"follower of {self.task_id} did not see the end")
            url = f"{self.ws_base}/v1/tasks/{self.task_id}/events/ws?after_seq={self.cursor}"
            try:
                async with connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {self.key}"},
                    open_timeout=10,
                    max_size=None,
                ) as ws:
                    self.connects += 1
                    async for raw in ws:
                        if self._on_message(json.loads(raw)):
                            self.finished = True
                            return
                    self.close_codes.append(ws.close_code)
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidStatus, TimeoutError):
                pass
            await asyncio.sleep(RETRY_SECONDS)

    def _on_message(self, message: dict[str, Any]) -> bool:
        kind = message.get("kind")
        if kind == "event":
            self.events.append(message["event"])
            self.cursor = int(message["cursor"])
            return message["event"]["type"] in TERMINAL_EVENTS
        if kind == "ephemeral":
            self.ephemeral.append(message["event"])
        return False

    @property
    def sequence_numbers(self) -> list[int]:
        """Sequence numbers in the order received."""
        return [int(e["sequence_number"]) for e in self.events]


def follow_all(ws_base: str, key: str, task_ids: list[uuid.UUID]) -> list[Follower]:
    """One follower per task (not started)."""
    return [Follower(ws_base, task_id, key) for task_id in task_ids]


@dataclass
class SessionFollower:
    """Follows a session's socket until every task of it ended, reconnecting with the cursor."""

    ws_base: str
    session_id: uuid.UUID
    key: str
    task_count: int
    events: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0
    connects: int = 0
    ended: set[str] = field(default_factory=set)

    async def run(self, limit_s: float = TASK_TIMEOUT_SECONDS) -> None:
        """Follow until a terminal event of each of the session's tasks arrived."""
        deadline = time.monotonic() + limit_s
        while len(self.ended) < self.task_count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"session follower of {self.session_id} did not see the end")
            url = f"{self.ws_base}/v1/sessions/{self.session_id}/events/ws?after_seq={self.cursor}"
            try:
                async with connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {self.key}"},
                    open_timeout=10,
                    max_size=None,
                ) as ws:
                    self.connects += 1
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("kind") != "event":
                            continue
                        event = message["event"]
                        self.events.append(event)
                        self.cursor = int(message["cursor"])
                        if event["type"] in TERMINAL_EVENTS:
                            self.ended.add(event["task_id"])
                            if len(self.ended) >= self.task_count:
                                return
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidStatus, TimeoutError):
                pass
            await asyncio.sleep(RETRY_SECONDS)

    def per_task(self) -> list[Follower]:
        """The received events split by task, as task followers (for the invariant checks)."""
        views: dict[str, Follower] = {}
        for event in self.events:
            task_id = event["task_id"]
            if task_id not in views:
                views[task_id] = Follower(self.ws_base, uuid.UUID(task_id), self.key)
            views[task_id].events.append(event)
        return list(views.values())
