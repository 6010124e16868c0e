"""API fixtures: a real Temporal dev server, the app on uvicorn on a loopback port, users.

Everything is real: PostgreSQL (per-test database), Redis, the Temporal dev server, HTTP
over TCP and WebSockets over TCP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentActivityEvent, EventType, TaskStatus
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.users import UserRepository
from agent.stack.ports import free_port
from api.main import create_app

PEPPER = SecretStr("test-pepper")
SERVER_START_TIMEOUT_SECONDS = 30.0
SERVER_STOP_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def temporal_client(temporal_dev_env: WorkflowEnvironment) -> Client:
    """The session's Temporal client."""
    return temporal_dev_env.client


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test alone."""
    return f"api-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api_settings(
    database_url: str,
    redis_server_url: str,
    temporal_dev_env: WorkflowEnvironment,
    task_queue: str,
) -> Settings:
    """Settings of the app under test."""
    address = temporal_dev_env.client.service_client.config.target_host
    return Settings(
        database_url=SecretStr(database_url),
        redis_url=redis_server_url,
        temporal_address=address,
        task_queue=task_queue,
        api_key_pepper=PEPPER,
        ws_ping_interval_seconds=5.0,
        ws_queue_size=1000,
    )


@dataclass
class RunningApi:
    """The app served on a loopback port."""

    app: FastAPI
    base_url: str
    ws_url: str
    settings: Settings

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        """An HTTP client, authenticated with `key` when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30.0)


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Start uvicorn for `app` on a free loopback port in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        ws="websockets-sansio",
        lifespan="on",
        # A client that never reads (the stalled-client test) must not hold shutdown open.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(SERVER_START_TIMEOUT_SECONDS):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    return server, task, port


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop a server started with `serve`."""
    server.should_exit = True
    try:
        async with asyncio.timeout(SERVER_STOP_TIMEOUT_SECONDS):
            await asyncio.shield(task)
    except TimeoutError:
        server.force_exit = True
        await task


ApiFactory = Callable[[Settings], Awaitable["RunningApi"]]


@pytest.fixture
async def api_factory(database_url: str) -> AsyncIterator[ApiFactory]:
    """Start apps with given settings; all are stopped after the test (before its database)."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> RunningApi:
        app = create_app(settings)
        server, task, port = await serve(app)
        running.append((server, task))
        return RunningApi(
            app=app,
            base_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}",
            settings=settings,
        )

    yield start
    for server, task in running:
        await stop(server, task)


@pytest.fixture
async def api(
    api_factory: Callable[[Settings], Awaitable[RunningApi]], api_settings: Settings
) -> RunningApi:
    """The app under test, served on a loopback port."""
    return await api_factory(api_settings)


@dataclass
class ApiUser:
    """A user and a plaintext API key of theirs."""

    id: UUID
    key: str


async def _make_user(
    manager: DatabaseSessionManager, name: str, *, is_admin: bool = False
) -> ApiUser:
    async with manager.session() as session:
        user = await UserRepository(session).get_or_create(name)
        plaintext, _ = await ApiKeyRepository(session, PEPPER).create_key(
            user.id, "test", is_admin=is_admin
        )
        await session.commit()
        return ApiUser(id=user.id, key=plaintext)


@pytest.fixture
async def alice(session_manager: DatabaseSessionManager) -> ApiUser:
    """A user with a key."""
    return await _make_user(session_manager, "alice")


@pytest.fixture
async def bob(session_manager: DatabaseSessionManager) -> ApiUser:
    """Another user with a key."""
    return await _make_user(session_manager, "bob")


@pytest.fixture
async def operator(session_manager: DatabaseSessionManager) -> ApiUser:
    """A user with an admin key (may change the system prompts)."""
    return await _make_user(session_manager, "operator", is_admin=True)


EventAppender = Callable[..., Awaitable[list[AgentActivityEvent]]]


@pytest.fixture
def append_events(session_manager: DatabaseSessionManager) -> EventAppender:
    """Append `count` stored events to a task in one committed transaction."""
    counter = {"n": 0}

    async def append(
        task_id: UUID,
        count: int = 1,
        *,
        session_id: UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> list[AgentActivityEvent]:
        drafts = []
        for _ in range(count):
            counter["n"] += 1
            drafts.append(
                EventDraft(
                    idempotency_key=f"test:{task_id}:{counter['n']}",
                    event=AgentActivityEvent(
                        type=EventType.TASK_PROGRESS,
                        task_id=task_id,
                        session_id=session_id,
                        status=TaskStatus.RUNNING,
                        message=f"event {counter['n']}",
                        details=details or {},
                    ),
                )
            )
        async with session_manager.session() as session:
            stored = await EventRepository(session).append(drafts)
            await session.commit()
        return stored

    return append
