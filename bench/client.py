"""Talking to the benchmark's stack: the HTTP API, Temporal and the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select
from temporalio.client import Client

from agent.config import to_asyncpg_url
from agent.db.models import Event
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType
from agent.repositories.api_keys import ApiKeyRepository
from agent.temporal import connect_temporal
from bench.stack import RunningStack, bench_settings

HTTP_TIMEOUT_SECONDS = 60.0
HTTP_CONNECTIONS = 256
TASK_WAIT_TIMEOUT_SECONDS = 900.0
STATUS_POLL_SECONDS = 0.05

INSTANT = "[ttft_ms=0] [tps=0]"
"""Directives of an instant simulator: no time to first token, no pacing."""


class BenchClients:
    """HTTP, Temporal and database access to one running stack.

    Args:
        stack: The running stack.
    """

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(
            base_url=stack.info.api_url,
            headers={"Authorization": f"Bearer {stack.info.api_key}"},
            timeout=HTTP_TIMEOUT_SECONDS,
            limits=httpx.Limits(
                max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
            ),
        )
        # No pre-ping, as in the worker (the producer of events in production): a ping is
        # three round trips (BEGIN, a statement, ROLLBACK) per session, more than the
        # relay scenario's whole append, and nothing restarts the bench's database.
        self.db = DatabaseSessionManager(
            to_asyncpg_url(stack.info.database_url), pool_size=20, pre_ping=False
        )
        self._temporal: Client | None = None
        self.user_id: UUID | None = None

    async def __aenter__(self) -> BenchClients:
        settings = bench_settings().model_copy(
            update={
                "temporal_address": self.stack.info.temporal_address,
                "temporal_namespace": self.stack.info.temporal_namespace,
            }
        )
        self._temporal = await connect_temporal(settings)
        await self.db.__aenter__()
        async with self.db.session() as session:
            keys = ApiKeyRepository(session, settings.api_key_pepper)
            self.user_id = await keys.resolve(self.stack.info.api_key)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.db.__aexit__(None, None, None)

    @property
    def temporal(self) -> Client:
        """The Temporal client (pydantic data converter)."""
        assert self._temporal is not None
        return self._temporal

    async def create_task(self, goal: str, **fields: Any) -> dict[str, Any]:
        """`POST /v1/tasks`; returns the created task."""
        response = await self.http.post("/v1/tasks", json={"goal": goal, **fields})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def get_task(self, task_id: str) -> dict[str, Any]:
        """`GET /v1/tasks/{id}`."""
        response = await self.http.get(f"/v1/tasks/{task_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def wait_result(self, workflow_id: str) -> float:
        """Wait for a workflow to close; returns the wall clock (`time.time()`) then."""
        handle = self.temporal.get_workflow_handle(workflow_id)
        await asyncio.wait_for(handle.result(), TASK_WAIT_TIMEOUT_SECONDS)
        return time.time()

    async def wait_status(self, task_id: str, statuses: Sequence[str]) -> dict[str, Any]:
        """Poll the task until its status is one of `statuses`."""
        deadline = time.monotonic() + TASK_WAIT_TIMEOUT_SECONDS
        while True:
            task = await self.get_task(task_id)
            if task["status"] in statuses:
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} stayed {task['status']}")
            await asyncio.sleep(STATUS_POLL_SECONDS)

    async def count_events(self, task_ids: Sequence[str], type_: EventType | None = None) -> int:
        """Stored events of some tasks (of one type when given)."""
        stmt = select(func.count()).select_from(Event).where(Event.task_id.in_(task_ids))
        if type_ is not None:
            stmt = stmt.where(Event.type == type_.value)
        async with self.db.session() as session:
            return int((await session.execute(stmt)).scalar_one())
