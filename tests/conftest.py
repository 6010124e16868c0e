"""Shared fixtures: a real PostgreSQL and a real Redis for the whole test session.

By default both are embedded (started here, stopped at the end). Set
`AGENT_TEST_DATABASE_URL` / `AGENT_TEST_REDIS_URL` to use existing servers instead.
Each test gets its own freshly migrated database (cloned from a migrated template),
so tests never see each other's rows.

The embedded servers keep their files in private temporary directories, not under
pytest's `tmp_path_factory`: pytest deletes all but the newest three base directories
when a session starts, so a concurrent pytest run (CI shards, a second terminal) would
otherwise delete a running server's data directory from under it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.testing import WorkflowEnvironment

from agent.config import to_libpq_url
from agent.db.migrate import upgrade_database
from agent.db.session import DatabaseSessionManager
from agent.stack.postgres import EmbeddedPostgres
from agent.stack.redis import EmbeddedRedis
from agent.stack.temporal_server import temporal_binary
from agent.temporal import data_converter, ensure_search_attributes

TEMPLATE_DB = f"agent_template_{uuid.uuid4().hex[:8]}"


@contextmanager
def _private_dir(kind: str) -> Iterator[Path]:
    """A temporary directory that only this test session owns and removes."""
    directory = Path(tempfile.mkdtemp(prefix=f"agent-test-{kind}-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (embedded unless configured)."""
    configured = os.environ.get("AGENT_TEST_DATABASE_URL")
    if configured:
        yield to_libpq_url(configured)
        return
    with _private_dir("pg") as directory:
        server = EmbeddedPostgres(directory / "data", durable=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def migrated_template(postgres_server_url: str) -> Iterator[str]:
    """Name of a database migrated to head, used as the template of every test database."""
    import asyncio

    async def create() -> None:
        conn = await asyncpg.connect(postgres_server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    upgrade_database(_with_database(postgres_server_url, TEMPLATE_DB))
    yield TEMPLATE_DB
    asyncio.run(drop())


@pytest.fixture
async def database_url(postgres_server_url: str, migrated_template: str) -> AsyncIterator[str]:
    """URL of a fresh, migrated database for one test; dropped afterwards."""
    name = f"agent_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    finally:
        await conn.close()
    yield _with_database(postgres_server_url, name)
    conn = await asyncpg.connect(postgres_server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def session_manager(database_url: str) -> AsyncIterator[DatabaseSessionManager]:
    """A session manager on the test's database."""
    async with DatabaseSessionManager(database_url, pool_size=5) as manager:
        yield manager


@pytest.fixture
async def session(session_manager: DatabaseSessionManager) -> AsyncIterator[AsyncSession]:
    """One session on the test's database."""
    async for db_session in session_manager.get_session():
        yield db_session


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """URL of a Redis server (embedded unless `AGENT_TEST_REDIS_URL` is set)."""
    configured = os.environ.get("AGENT_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with _private_dir("redis") as directory:
        server = EmbeddedRedis(directory)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
async def redis_client(redis_server_url: str) -> AsyncIterator[Redis]:
    """A Redis client whose keys are isolated by a per-test key prefix check."""
    client: Redis = Redis.from_url(redis_server_url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


SERVER_STARTUP_TIMEOUT = timedelta(seconds=60)
"""The SDK waits 5 s by default: too little while every xdist worker starts its servers."""


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One Temporal dev server for the session; each test uses its own task queue."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter,
        dev_server_existing_path=str(temporal_binary()),
        dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()
