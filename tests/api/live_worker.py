"""Helpers of the API tests that run tasks for real: a worker on the app's queue, polling.

The worker runs the real activities against a (recording) simulator; `tests/api/test_e2e.py`
has the same worker as a fixture for its plain simulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.client import Client

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.llm.client import LLMClient
from agent.prompts.cache import PromptCache
from agent.tools.toolbox import Toolbox
from agent.worker import build_worker
from tests.polling import wait_until


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    session_manager: DatabaseSessionManager,
    llm_base_url: str,
    redis: Redis | None = None,
    toolbox: Toolbox | None = None,
) -> AsyncIterator[None]:
    """Run a worker on `settings.task_queue` (the app's) until the block ends.

    Args:
        client: The Temporal client.
        settings: The app's settings (queue, database).
        session_manager: Sessions on the test's database.
        llm_base_url: The simulator to talk to.
        redis: When given, the worker reads prompts through a Redis cache, as deployed.
        toolbox: The worker's MCP servers (None: no tool servers).
    """
    worker_settings = settings.model_copy(
        update={"llm_base_url": llm_base_url, "max_concurrent_activities": 20}
    )
    cache = (
        PromptCache(redis, worker_settings.prompt_cache_ttl_seconds) if redis is not None else None
    )
    async with LLMClient(worker_settings) as llm:
        worker = build_worker(
            client, worker_settings, session_manager, llm, prompt_cache=cache, toolbox=toolbox
        )
        async with worker:
            yield


async def wait_for_task(
    http: httpx.AsyncClient, task_id: str, done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Poll `GET /v1/tasks/{id}` until `done(task)`; fail when it ends without that."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        response = await http.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if done(task):
            found.append(task)
            return True
        assert not TaskStatus(task["status"]).is_terminal, f"task ended before {what}: {task}"
        return False

    await wait_until(check, what)
    return found[-1]


async def wait_paused(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """Wait until the task waits at a breakpoint; return the task."""
    return await wait_for_task(http, task_id, lambda t: t["paused"] is not None, "a pause")


async def wait_finished(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """Wait until the task reached a terminal status; return the task."""

    async def check() -> bool:
        response = await http.get(f"/v1/tasks/{task_id}")
        return bool(TaskStatus(response.json()["status"]).is_terminal)

    await wait_until(check, "the end of the task")
    final: dict[str, Any] = (await http.get(f"/v1/tasks/{task_id}")).json()
    return final
