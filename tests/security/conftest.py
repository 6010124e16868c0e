"""One cluster of real processes (DEBUG logging) shared by the security tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.config import to_asyncpg_url
from agent.db.session import DatabaseSessionManager
from agent.events.types import TaskStatus
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository
from tests.chaos.clients import Api, new_tag
from tests.chaos.harness import API_KEY_PEPPER, Cluster


@pytest.fixture(scope="package")
async def security_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """PostgreSQL, Temporal, simulator, a worker and the API, logging at DEBUG."""
    cluster = Cluster(Path(tmp_path_factory.mktemp("security")), log_level="DEBUG")
    await cluster.start(workers=1, users=2)
    try:
        yield cluster
    finally:
        await cluster.stop()


@dataclass
class OwnedTask:
    """A task of the first user, paused at its `after_plan` breakpoint, with events."""

    id: uuid.UUID
    session_id: uuid.UUID
    tag: str
    breakpoint_id: str


@pytest.fixture(scope="package")
async def owned_task(security_cluster: Cluster) -> OwnedTask:
    """Create the first user's task and wait until it pauses after planning."""
    owner = security_cluster.users[0]
    api = Api(security_cluster.api_url, owner.key)
    tag = new_tag()
    session_id = uuid.uuid4()
    try:
        task_id = await api.create_task(
            f"Sketch a poster about owls [milestones=2] {tag}",
            session_id=str(session_id),
            breakpoints=["after_plan"],
            complexity="simple",
        )
        task = await api.wait_status(task_id, frozenset({TaskStatus.PAUSED}))
    finally:
        await api.aclose()
    return OwnedTask(task_id, session_id, tag, task["paused"]["breakpoint_id"])


@pytest.fixture(scope="package")
async def admin_key(security_cluster: Cluster) -> str:
    """An admin key (of an operator user of its own): may change the system prompts."""
    manager = DatabaseSessionManager(to_asyncpg_url(security_cluster.database_url), pool_size=1)
    async with manager, manager.session() as session:
        user = await UserRepository(session).get_or_create("security-operator")
        plaintext, _ = await ApiKeyRepository(session, SecretStr(API_KEY_PEPPER)).create_key(
            user.id, "operator", is_admin=True
        )
        await session.commit()
    return plaintext
